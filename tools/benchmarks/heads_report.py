"""The outputs of ``benchmark_heads.py``: the result as JSON, its tables as markdown, and the
mmext / built-in ratios as a bar chart (PNG).

Imported by the scripts next to it (``python tools/benchmarks/X.py`` puts this folder on ``sys.path``).
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from head_pairs import LABELS

from mmext.analysis import markdown_table, write_report

MIB = 2**20


def _ms(summary: dict) -> str:
    return f'{summary["median"] * 1e3:.1f} ({summary["iqr"] * 1e3:.1f})'


def _mib(nbytes: int) -> str:
    return f'{nbytes / MIB:.1f}'


def _diff(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1e}'


def _size(rec: dict) -> str:
    size = rec['size']
    dims = f'{size["height"]}x{size["width"]}@{size["batch"]}'
    return dims if size['name'][0].isdigit() else f'{size["name"]} {dims}'


def head_table(out: dict) -> List[str]:
    """Latency and memory of every head workload, with the mmext / built-in ratios."""
    rows = [[name, _size(rec), kind, _ms(w['mmext']['seconds']), _ms(w['builtin']['seconds']),
             f'**{w["ratio"]["time"]:.3f}**', _mib(w['mmext']['peak_bytes']),
             _mib(w['builtin']['peak_bytes']), f'**{w["ratio"]["memory"]:.3f}**', _diff(w['max_abs_diff'])]
            for name, records in out['heads'].items() for rec in records
            for kind, w in rec['workloads'].items()]
    return markdown_table(['method', 'size', 'workload', 'mmext ms', 'built-in ms', '**time ratio**',
                           'mmext MiB', 'built-in MiB', '**memory ratio**', 'max abs diff'], rows)


def gflops_table(out: dict) -> List[str]:
    """Achieved GFLOP/s of every head's forward next to the matmul peak."""
    peak = out['dense_peak']['gflops_per_s']
    rows = [[rec['heads'][label], _size(rec), f'{w["flops"] / 1e9:.3f}',
             f'{w["seconds"]["median"] * 1e3:.1f}', f'{w["gflops_per_s"]:.1f}',
             f'{100 * w["gflops_per_s"] / peak:.0f} %']
            for records in out['heads'].values() for rec in records
            for label, w in ((lb, rec['workloads']['forward'][lb]) for lb in LABELS)]
    return markdown_table(['head', 'size', 'GFLOP', 'median ms', 'GFLOP/s', '% of dense peak'], rows)


def scaling_table(out: dict) -> List[str]:
    """PointRend inference latency and memory per input size."""
    rows = [[f'{rec["size"]["height"]}x{rec["size"]["width"]}',
             'x'.join(map(str, rec['size']['features'][0][2:])),
             _ms(w['mmext']['seconds']), _ms(w['builtin']['seconds']), f'**{w["ratio"]["time"]:.3f}**',
             _mib(w['mmext']['peak_bytes']), _mib(w['builtin']['peak_bytes'])]
            for rec in out['pointrend_scaling'] for w in [rec['workloads']['inference']]]
    return markdown_table(['image', 'fine features', 'mmext ms', 'built-in ms', '**time ratio**',
                           'mmext MiB', 'built-in MiB'], rows)


def model_table(out: dict) -> List[str]:
    """Whole-model train step and inference, with the ratios."""
    rows = [[name, _ms(t['mmext']['seconds']), _ms(t['builtin']['seconds']), f'**{t["ratio"]["time"]:.3f}**',
             f'**{t["ratio"]["memory"]:.3f}**', f'{i["mmext"]["images_per_s"]:.2f}',
             f'{i["builtin"]["images_per_s"]:.2f}', f'**{i["ratio"]["time"]:.3f}**']
            for name, rec in out['models'].items() for t, i in [(rec['train_step'], rec['inference'])]]
    return markdown_table(['method', 'train step mmext ms', 'built-in ms', '**time ratio**',
                           '**memory ratio**', 'inference mmext img/s', 'built-in img/s',
                           '**latency ratio**'], rows)


def markdown(result: Dict[str, Any]) -> str:
    """The tables of a result, one section per device."""
    env = result['environment']
    lines = ['# mmext heads vs built-in heads', '',
             f'torch {env["torch"]}, {env["torch_threads"]} threads, CPU {env["cpu"]}, GPU {env["gpu"]}. '
             + result['notes']['ratio'], '']
    for device, out in result['devices'].items():
        lines += [f'## {device}', '']
        if isinstance(out, str):
            lines += [out, '']
            continue
        peak = out['dense_peak']
        lines += [f'Dense fp32 peak: torch.mm {peak["matmul"]["size"]}² {peak["matmul"]["gflops_per_s"]:.1f} '
                  f'GFLOP/s, 3x3 conv {"x".join(map(str, peak["conv3x3"]["shape"]))} '
                  f'{peak["conv3x3"]["gflops_per_s"]:.1f} GFLOP/s; "% of peak" is of the larger.', '',
                  '### Heads: median ms (IQR), peak memory MiB', '', *head_table(out), '',
                  '### Achieved GFLOP/s of the head forward', '', *gflops_table(out), '']
        if out['pointrend_scaling']:
            lines += ['### PointRend inference (full subdivision) vs input size, batch 1', '',
                      *scaling_table(out), '']
        if out['models']:
            lines += ['### Whole model on the embedded data', '', *model_table(out), '']
    lines += ['## How it was measured', ''] + [f'- {k}: {v}' for k, v in result['notes'].items()]
    return '\n'.join(lines) + '\n'


def ratio_rows(result: Dict[str, Any]) -> List[Tuple[str, float, float]]:
    """(label, time ratio, memory ratio or NaN) of every measurement, for the chart."""
    rows = []
    for device, out in result['devices'].items():
        if isinstance(out, str):
            continue
        rows += [(f'{device} {name} {rec["size"]["name"]} {kind}', w['ratio']['time'], w['ratio']['memory'])
                 for name, records in out['heads'].items() for rec in records
                 for kind, w in rec['workloads'].items()]
        scaling = [(rec['size']['name'], rec['workloads']['inference']['ratio'])
                   for rec in out['pointrend_scaling']]
        rows += [(f'{device} pointrend inference {size}', r['time'], r['memory']) for size, r in scaling]
        for name, rec in out['models'].items():
            rows += [(f'{device} {name} model train step', rec['train_step']['ratio']['time'],
                      rec['train_step']['ratio']['memory']),
                     (f'{device} {name} model inference', rec['inference']['ratio']['time'], float('nan'))]
    return rows


def bar_chart(result: Dict[str, Any], path: Path) -> None:
    """Horizontal bars of the time and memory ratios, with the parity line at 1."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = ratio_rows(result)
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(11, 0.3 * len(rows) + 1.5))
    for ax, column, title in ((axes[0], 1, 'time'), (axes[1], 2, 'peak memory')):
        values = [row[column] for row in rows]
        bars = ax.barh(range(len(rows)), values,
                       color=['tab:green' if v <= 1 else 'tab:red' for v in values])
        ax.bar_label(bars, fmt='%.2f', fontsize=7, padding=2)
        ax.axvline(1.0, color='black', linewidth=0.8)
        ax.set_xlabel(f'{title} ratio mmext / built-in')
        ax.set_title(f'{title}: below 1, mmext is cheaper', fontsize=10)
    axes[0].set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle('mmext heads vs built-in (line: parity at 1)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(result: Dict[str, Any], out_dir: Path) -> Dict[str, Path]:
    """JSON, markdown and PNG of a result under ``out_dir``; returns their paths."""
    return write_report(out_dir, 'benchmark_heads', result, markdown(result),
                        chart=lambda path: bar_chart(result, path))


