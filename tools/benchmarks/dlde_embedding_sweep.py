"""What DLDE's embedding size costs and buys against RetinaNet, in one process, with the trained runs' mAP.

    .venv/bin/python tools/benchmarks/dlde_embedding_sweep.py [--sizes 32 64 128 256] [--seeds 0 1]
        [--dlde-runs 'work_dirs/dlde_r50_e{e}_fp32_seed{seed}']
        [--dlde-variants 'means_lr 0.01=work_dirs/dlde_r50_e{e}_mlr0.01_fp32_seed{seed}' ...]
        [--retinanet-runs 1200='work_dirs/retinanet_r50_fp32_seed{seed}' ...]
        [--model-steps 10] [--repeats 5] [--amp] [--costs-from tools/benchmarks/results/dlde_sweep.json]
        [--out-dir work_dirs/benchmarks/dlde_sweep]

For each ``embedding_size`` E, ``configs/dlde_retinanet_r50.py`` with that E against
``configs/retinanet_r50.py`` (``benchmark_heads.py``'s DLDE pair: same backbone, neck and data, weights of
equal name copied): the whole-model train step (fp32 like the accuracy runs, which train with
``--fp32``; ``--amp``: mixed precision) and batch-1 inference latency, interleaved (ratio DLDE /
RetinaNet), the whole model's and the head's peak training memory (head: the embedded batch), all
measured again for every E so that each ratio comes from one process. Then the bbox mAP of the
trained runs: ``--dlde-runs`` is a pattern of work directories (``{e}``, ``{seed}``), ``--retinanet-runs``
names RetinaNet runs by their iteration count; each run's final ``coco/bbox_mAP`` is read from its
``vis_data/scalars.json``. Missing runs are reported as missing. ``--dlde-variants`` adds runs of the same
sizes trained with another setting that does not change the cost (``means_lr``), under a label.
``--costs-from`` takes the costs of an earlier sweep's JSON instead of measuring them again, for when only
trained runs were added (the settings it was measured with are kept in the output).

Training cost on the plot's x axis: RetinaNet's 1200 iterations = 1; DLDE's is its train-step ratio,
a RetinaNet run of N iterations costs N / 1200. Writes ``dlde_sweep.json``, ``.md`` and ``.png``.
"""
import argparse
import glob
import json
import os.path as osp
import statistics
import sys
from types import SimpleNamespace

from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # head_pairs, benchmark_heads beside this file
from benchmark_heads import bench_heads, bench_models, parse_size  # noqa: E402
from head_pairs import BUILTIN, BUILTIN_PAIRS, MMEXT  # noqa: E402

from mmext.analysis import environment, quiet_logs, write_report  # noqa: E402

DLDE_CONFIG = 'configs/dlde_retinanet_r50.py'
BASE_ITERS = 1200


def final_bbox_map(work_dir: str):
    """(mAP, mAP@50) of the last validation in ``work_dir``'s newest scalars.json, in percent; None if
    the run is missing or unfinished."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return None
    found = None
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'coco/bbox_mAP' in record:
                found = (100 * record['coco/bbox_mAP'], 100 * record['coco/bbox_mAP_50'])
    return found


def seeds_map(pattern: str, seeds, **keys) -> dict:
    runs = {seed: final_bbox_map(pattern.format(seed=seed, **keys)) for seed in seeds}
    found = [value for value in runs.values() if value is not None]
    return dict(runs={str(seed): value for seed, value in runs.items()},
                mean_map=statistics.mean(v[0] for v in found) if found else None,
                mean_map50=statistics.mean(v[1] for v in found) if found else None)


COSTS = ('train_step_ratio', 'inference_ratio', 'model_memory_ratio', 'head_memory_ratio', 'head_peak_mb',
         'model_peak_mb')


def labelled(items) -> dict:
    """``['LABEL=PATTERN', ...]`` -> ``{LABEL: PATTERN}`` (split at the first '='): ``--dlde-variants``,
    and ``--retinanet-runs`` with iteration counts as labels."""
    pairs = [item.partition('=') for item in items]
    for label, sep, pattern in pairs:
        if not (sep and label and pattern):
            raise SystemExit(f'expected LABEL=PATTERN, got {label}{sep}{pattern!r}')
    return {label: pattern for label, _, pattern in pairs}


def measure_size(embedding_size: int, args) -> dict:
    pair = BUILTIN_PAIRS['dlde']
    cfg = Config.fromfile(DLDE_CONFIG)
    cfg.model.bbox_head.embedding_size = embedding_size
    models = bench_models(cfg, pair, args, 'cpu')
    head = bench_heads(cfg, pair, parse_size('embedded', pair, cfg), ('train',), args, 'cpu')
    train = head['workloads']['train']
    return dict(train_step_ratio=models['train_step']['ratio']['time'],
                inference_ratio=models['inference']['ratio']['time'],
                model_memory_ratio=models['train_step']['ratio']['memory'],
                head_memory_ratio=train['ratio']['memory'],
                head_peak_mb={label: train[label]['peak_bytes'] / 2**20 for label in (MMEXT, BUILTIN)},
                model_peak_mb={label: models['train_step'][label]['peak_bytes'] / 2**20
                               for label in (MMEXT, BUILTIN)})


def fmt(value, spec='.2f', missing='—'):
    return missing if value is None else format(value, spec)


def markdown(result) -> str:
    lines = ['DLDE embedding size against RetinaNet (ratios DLDE / RetinaNet, one process per size; '
             'mAP: mean of the seeds, per seed in brackets)', '',
             '| E | train step | inference latency | head peak memory (train) | model peak memory (train) '
             '| bbox mAP | mAP@50 |', '|---|---|---|---|---|---|---|']
    for row in result['sizes']:
        for label, accuracy in [('', row['accuracy']), *row.get('variants', {}).items()]:
            per_seed = ' / '.join(fmt(v and v[0], '.1f') for v in accuracy['runs'].values())
            lines.append(f'| {row["embedding_size"]}{", " + label if label else ""} | '
                         f'{row["train_step_ratio"]:.3f} | {row["inference_ratio"]:.3f} | '
                         f'{row["head_memory_ratio"]:.2f} | {row["model_memory_ratio"]:.2f} | '
                         f'{fmt(accuracy["mean_map"], ".1f")} ({per_seed}) | '
                         f'{fmt(accuracy["mean_map50"], ".1f")} |')
    for iters, accuracy in result['retinanet'].items():
        per_seed = ' / '.join(fmt(v and v[0], '.1f') for v in accuracy['runs'].values())
        lines.append(f'| RetinaNet, {iters} it (cost {int(iters) / BASE_ITERS:.2f}) | | | | | '
                     f'{fmt(accuracy["mean_map"], ".1f")} ({per_seed}) | '
                     f'{fmt(accuracy["mean_map50"], ".1f")} |')
    return '\n'.join(lines) + '\n'


def plot_point(ax, cost: float, accuracy: dict, label: str, marker: str, color: str) -> None:
    """The seeds' mean mAP at ``cost``, bars from the lowest to the highest seed."""
    values = [v[0] for v in accuracy['runs'].values() if v]
    if not values:
        return
    mean = accuracy['mean_map']
    ax.errorbar(cost, mean, yerr=[[mean - min(values)], [max(values) - mean]], fmt=marker, color=color)
    ax.annotate(label, (cost, mean), textcoords='offset points', xytext=(5, 4), fontsize=8)


def plot(result, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in result['sizes']:
        plot_point(ax, row['train_step_ratio'], row['accuracy'], f'E={row["embedding_size"]}', 'o', 'C0')
        for label, accuracy in row.get('variants', {}).items():
            plot_point(ax, row['train_step_ratio'], accuracy, f'E={row["embedding_size"]}, {label}', 'D',
                       'C2')
    for iters, accuracy in result['retinanet'].items():
        plot_point(ax, int(iters) / BASE_ITERS, accuracy, f'RetinaNet {iters} it', 's', 'C3')
    ax.set_xlabel('training cost (RetinaNet 1200 iterations = 1)')
    ax.set_ylabel('bbox mAP (embedded COCO boxes)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', type=int, default=[32, 64, 128, 256])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    parser.add_argument('--dlde-runs', default='work_dirs/dlde_r50_e{e}_fp32_seed{seed}')
    parser.add_argument('--dlde-variants', nargs='*', metavar='LABEL=PATTERN',
                        default=['means_lr 0.01=work_dirs/dlde_r50_e{e}_mlr0.01_fp32_seed{seed}'])
    parser.add_argument('--retinanet-runs', nargs='*', metavar='ITERS=PATTERN',
                        default=['1200=work_dirs/retinanet_r50_fp32_seed{seed}',
                                 '1248=work_dirs/retinanet_r50_1248it_fp32_seed{seed}',
                                 '1488=work_dirs/retinanet_r50_1488it_fp32_seed{seed}',
                                 '1764=work_dirs/retinanet_r50_1764it_fp32_seed{seed}'])
    parser.add_argument('--model-steps', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5, help='timed head runs')
    parser.add_argument('--amp', action='store_true',
                        help='train steps in mixed precision (default fp32, as the accuracy runs)')
    parser.add_argument('--costs-from', metavar='JSON',
                        help="an earlier sweep's output: its costs are reused, not measured again")
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/dlde_sweep')
    args = parser.parse_args()
    variants = labelled(args.dlde_variants)
    quiet_logs()
    timing = SimpleNamespace(model_steps=args.model_steps, model_warmup=2, model_images=0,
                             repeats=args.repeats, warmup=1, amp=args.amp, fp32=not args.amp)
    result = dict(environment=environment(), settings=vars(args), sizes=[], retinanet={})
    measured = {}
    if args.costs_from:
        with open(args.costs_from) as f:
            earlier = json.load(f)
        measured = {row['embedding_size']: {key: row[key] for key in COSTS} for row in earlier['sizes']}
        missing = sorted(set(args.sizes) - set(measured))
        if missing:
            raise SystemExit(f'{args.costs_from} has no costs for embedding sizes {missing}')
        result.update(environment=earlier['environment'], costs_settings=earlier['settings'])
    for embedding_size in args.sizes:
        costs = measured.get(embedding_size) or measure_size(embedding_size, timing)
        row = dict(embedding_size=embedding_size, **costs)
        row['accuracy'] = seeds_map(args.dlde_runs, args.seeds, e=embedding_size)
        found = {label: seeds_map(pattern, args.seeds, e=embedding_size)
                 for label, pattern in variants.items()}
        row['variants'] = {label: accuracy for label, accuracy in found.items()
                           if accuracy['mean_map'] is not None}
        result['sizes'].append(row)
        print(markdown(dict(result, sizes=[row], retinanet={})).splitlines()[-1], flush=True)
    for iters, pattern in labelled(args.retinanet_runs).items():
        result['retinanet'][iters] = seeds_map(pattern, args.seeds)
    write_report(args.out_dir, 'dlde_sweep', result, markdown(result), chart=lambda path: plot(result, path))
    print(markdown(result))


if __name__ == '__main__':
    main()
