"""Train configs/ocr_r50.py with mmext's ObjectContextHead and with mmseg's built-in OCRHead (same
backbone, data, schedule and seeds), one run after the other, and report mIoU and wall time.

    .venv/bin/python tools/benchmarks/ocr_vs_mmseg.py [--seeds 0 1] [--config configs/ocr_r50.py]

Each run is a separate ``tools/train.py`` process; the table is printed and written as JSON to
``work_dirs/benchmarks/ocr_vs_mmseg.json``. Run it on an otherwise idle machine: times are wall
clock.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADS = {'mmext ObjectContextHead': 'ObjectContextHead', 'mmseg OCRHead': 'OCRHead'}


def train(config, head, seed, work_dir):
    """Run tools/train.py once.

    Returns:
        dict: final val ``mIoU``; wall ``minutes`` of the whole process (start-up, dataset,
        training, validation); ``peak_rss_gb``, the process's peak resident memory; ``fps``,
        images per second of the final validation (batch 1, data loading included).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / 'tools/train.py'), config, '--work-dir', str(work_dir),
           '--cfg-options', f'model.decode_head.1.type={head}', f'randomness.seed={seed}']
    start = time.perf_counter()
    with open(work_dir / 'benchmark.log', 'w') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f'{" ".join(cmd)} failed, see {work_dir / "benchmark.log"}')
    path = max(work_dir.glob('*/vis_data/scalars.json'))  # this run's timestamped folder
    final = [r for r in map(json.loads, path.read_text().splitlines()) if 'mIoU' in r][-1]
    return dict(mIoU=final['mIoU'], minutes=round(seconds / 60, 2),
                peak_rss_gb=round(usage.ru_maxrss / 2**20, 2), fps=round(1 / final['time'], 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/ocr_r50.py')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    args = parser.parse_args()
    out = ROOT / 'work_dirs/benchmarks'
    rows = []
    for seed in args.seeds:
        for name, head in HEADS.items():
            result = train(args.config, head, seed, out / f'{head}_seed{seed}')
            row = dict(head=name, seed=seed, **result)
            rows.append(row)
            print(f'{name:26s} seed {seed}: mIoU {row["mIoU"]:6.2f}  {row["minutes"]:5.2f} min  '
                  f'peak RSS {row["peak_rss_gb"]:.2f} GB  {row["fps"]:.1f} img/s', flush=True)
    for name in HEADS:
        mious = [r['mIoU'] for r in rows if r['head'] == name]
        print(f'{name:26s} mean mIoU {sum(mious) / len(mious):6.2f} over seeds {args.seeds}: '
              f'{", ".join(f"{m:.2f}" for m in mious)}')
    (out / 'ocr_vs_mmseg.json').write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
