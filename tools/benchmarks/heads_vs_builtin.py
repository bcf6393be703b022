"""Train an embedded recipe with mmext's head and with the host library's built-in one (same
backbone, data, schedule and seeds), one run after the other, and report accuracy, wall time and
memory.

    .venv/bin/python tools/benchmarks/heads_vs_builtin.py ocr [--seeds 0 1] [--fp32 | --amp]
    .venv/bin/python tools/benchmarks/heads_vs_builtin.py pointrend [--seeds 0 1]
    .venv/bin/python tools/benchmarks/heads_vs_builtin.py dlde [--seeds 0 1]
    .venv/bin/python tools/benchmarks/heads_vs_builtin.py net2vec [--seeds 0 1] [--cfg-options ...]

``net2vec`` compares the IoU-encoded Net2Vec probe with the plain BCE probe on raw masks (there is no
built-in concept probe); both read the backbone of ``work_dirs/ocr_r50/iter_640.pth`` unless
``--cfg-options model.backbone.init_cfg.checkpoint=PATH`` says otherwise.

Each run is a separate ``tools/train.py`` process. For PointRend the final checkpoint is also tested
with ``model.test_cfg.subdivision_steps=0``, the coarse FPN prediction of the same model, so that the
boundary IoU (mBIoU) of the coarse and the refined output can be compared. The table is printed and
written as JSON to ``work_dirs/benchmarks/<method>_vs_builtin.json``. Run it on an otherwise idle
machine: times are wall clock. The runs of each method are those of its adapter in ``head_pairs.py``.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# Modules next to this script (its folder is sys.path[0] when it runs).
from head_pairs import PAIRS

from mmext.analysis import write_report

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd, log_path):
    """Run a command with its output in log_path; return (seconds, rusage of the child)."""
    start = time.perf_counter()
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f'{" ".join(map(str, cmd))} failed, see {log_path}')
    return time.perf_counter() - start, usage


def train(config, options, seed, work_dir, metrics, precision_flags=()):
    """Run tools/train.py once.

    Returns:
        dict: the final validation's ``metrics``; wall ``minutes`` of the whole process (start-up,
        dataset, training, validation); ``peak_rss_gb``, the process's peak resident memory;
        ``fps``, images per second of the final validation (batch 1, data loading included).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    seconds, usage = _run([sys.executable, 'tools/train.py', config, *precision_flags, '--work-dir', work_dir,
                           '--cfg-options', *options, f'randomness.seed={seed}'],
                          work_dir / 'benchmark.log')
    path = max(work_dir.glob('*/vis_data/scalars.json'))  # this run's timestamped folder
    final = [r for r in map(json.loads, path.read_text().splitlines()) if metrics[0] in r][-1]
    return dict({k: round(final[k] * (100 if k.startswith('coco/') else 1), 2) for k in metrics},
                minutes=round(seconds / 60, 2), peak_rss_gb=round(usage.ru_maxrss / 2**20, 2),
                fps=round(1 / final['time'], 1))


def test_coarse(config, options, work_dir, metrics, coarse_options):
    """tools/test.py on the final checkpoint with ``coarse_options`` (PointRend: no subdivision, the
    coarse FPN prediction)."""
    checkpoint = max(work_dir.glob('iter_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    log = work_dir / 'coarse.log'
    _run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir / 'coarse',
          '--cfg-options', *options, *coarse_options], log)
    text = log.read_text()
    return {f'coarse_{key}': float(re.findall(rf'\b{key}: ([\d.]+)', text)[-1]) for key in metrics}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('method', choices=sorted(PAIRS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--cfg-options', nargs='+', default=[], help='added to every run')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--fp32', action='store_true', help="tools/train.py --fp32 for every run (the "
                           "README's tables; the segmentation recipes train in bf16 where the CPU can)")
    precision.add_argument('--amp', action='store_true', help='tools/train.py --amp for every run')
    args = parser.parse_args()
    pair = PAIRS[args.method]
    out = ROOT / 'work_dirs/benchmarks'
    rows = []
    for seed in args.seeds:
        for run in pair.training_runs():
            options = [*run.options, *args.cfg_options]
            work_dir = out / args.method / f'{"_".join(re.findall(r"[A-Za-z0-9]+", run.name)[1:])}_seed{seed}'
            flags = ['--fp32'] if args.fp32 else ['--amp'] if args.amp else []
            row = dict(head=run.name, seed=seed,
                       **train(run.config, options, seed, work_dir, pair.metrics, flags))
            if pair.coarse_test_options:
                row.update(test_coarse(run.config, options, work_dir, pair.metrics, pair.coarse_test_options))
            rows.append(row)
            print(f'{run.name:26s} seed {seed}: ' + '  '.join(f'{k} {v}' for k, v in row.items()
                                                             if k not in ('head', 'seed')), flush=True)
    key = pair.metrics[0]
    for run in pair.training_runs():
        values = [r[key] for r in rows if r['head'] == run.name]
        print(f'{run.name:26s} mean {key} {sum(values) / len(values):6.2f} over seeds {args.seeds}: '
              f'{", ".join(f"{v:.2f}" for v in values)}')
    write_report(out, f'{args.method}_vs_builtin', dict(method=args.method, seeds=args.seeds, runs=rows))


if __name__ == '__main__':
    main()
