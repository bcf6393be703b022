"""Load time of a genuine checkpoint through mmext's restricted loader against torch's own
``torch.load(weights_only=True)``, interleaved in one process.

    .venv/bin/python tools/benchmarks/checkpoint_load.py [--config configs/ocr_r50.py] [--repeats 10]
        [--contents resume|weights] [--out-dir work_dirs/benchmarks/checkpoint_load]

The checkpoint is what mmengine writes for the config's model after some training: ``meta`` with the
config text, ``state_dict``, the AdamW optimizer state (two moments per parameter) and a message hub
whose HistoryBuffers hold ``--history`` logged values each (``--contents resume``, OCRNet R50: 419 MB);
or ``meta`` and ``state_dict`` only, as published weights are (``--contents weights``: 140 MB).
torch's load gets mmext's allow-list (it refuses mmengine's HistoryBuffer otherwise); mmext's adds the
structure scan and the message-hub check. Both read the file from the page cache (one untimed round
first). Prints, and writes ``checkpoint_load_<contents>.json`` with the medians, the ratio mmext /
torch per round, the file and data.pkl sizes. Results: docs/benchmarks.md, section 4.
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile
import zipfile

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

import mmext  # noqa: F401  (registers the models; installs the restricted loader)
from mmext.analysis import build_model, environment, quiet_logs, ratio, time_interleaved, write_report
from mmext.engine.checkpoint import load_checkpoint_file
from mmext.engine.checkpoint.allow_list import checkpoint_globals_allowed


def genuine_checkpoint(cfg, history):
    """What mmengine's CheckpointHook saves for ``cfg``'s model after ``history`` logged iterations."""
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters())
    for param in model.parameters():
        optimizer.state[param] = dict(step=torch.tensor(float(history)), exp_avg=torch.randn_like(param),
                                      exp_avg_sq=torch.rand_like(param))
    buffers = {name: HistoryBuffer(list(np.random.rand(history)), [1] * history)
               for name in ('train/loss', 'train/lr', 'train/time', 'train/data_time', 'train/acc_seg')}
    return dict(meta=dict(cfg=cfg.pretty_text, seed=0, epoch=0, iter=history),
                state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                message_hub=dict(log_scalars=buffers, runtime_info=dict(iter=history, eta=np.float64(1.5)),
                                 resumed_keys=dict.fromkeys(buffers, True)))


def torch_load(path):
    with checkpoint_globals_allowed():
        return torch.load(path, map_location='cpu', weights_only=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/ocr_r50.py')
    parser.add_argument('--history', type=int, default=2000, help='logged values per HistoryBuffer')
    parser.add_argument('--contents', choices=('resume', 'weights'), default='resume')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/checkpoint_load')
    args = parser.parse_args()
    quiet_logs()
    cfg = Config.fromfile(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'iter_40000.pth')
        checkpoint = genuine_checkpoint(cfg, args.history)
        if args.contents == 'weights':
            checkpoint = dict(meta=checkpoint['meta'], state_dict=checkpoint['state_dict'])
        torch.save(checkpoint, path)
        del checkpoint
        with zipfile.ZipFile(path) as archive:
            data_pkl = next(info.file_size for info in archive.infolist()
                            if info.filename.endswith('/data.pkl'))
        times = time_interleaved({'torch': lambda _: torch_load(path),
                                  'mmext': lambda _: load_checkpoint_file(path, 'cpu')}, args.repeats)
        size = os.path.getsize(path)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = sorted(ratio(ours, theirs) for ours, theirs in zip(times['mmext'], times['torch']))
    result = dict(config=args.config, contents=args.contents, file_mb=size / 2**20,
                  data_pkl_kb=data_pkl / 2**10,
                  median_seconds=medians, times=times, mmext_over_torch=dict(
                      median=statistics.median(ratios), min=ratios[0], max=ratios[-1]),
                  environment=environment())
    print(f'{args.config} ({args.contents}): {size / 2**20:.0f} MB checkpoint, '
          f'data.pkl {data_pkl / 2**10:.0f} KB; '
          f'torch {medians["torch"]:.3f} s, mmext {medians["mmext"]:.3f} s (medians of {args.repeats}); '
          f'mmext / torch per round: median {result["mmext_over_torch"]["median"]:.3f}, '
          f'range {ratios[0]:.3f}-{ratios[-1]:.3f}')
    write_report(args.out_dir, f'checkpoint_load_{args.contents}', result)


if __name__ == '__main__':
    main()
