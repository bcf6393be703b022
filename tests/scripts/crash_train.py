"""Runs tools/train.py in this process and kills the process with SIGKILL at a chosen point, as a crash
(an out-of-memory kill, a pre-empted node) would: no exception, no clean-up, no flushed buffers.

    crash_train.py --after-iter N TRAIN_ARGS...      right after training iteration N
    crash_train.py --while-saving NAME TRAIN_ARGS... halfway through writing checkpoint NAME
                                                     (e.g. iter_4.pth): half of its bytes are on disk
"""
import argparse
import io
import os
import runpy
import signal
import sys
from pathlib import Path

import torch
from mmengine.runner import IterBasedTrainLoop, Runner

TRAIN = Path(__file__).resolve().parents[2] / 'tools/train.py'


def _sigkill():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after_iter(n):
    """SIGKILL once ``IterBasedTrainLoop.run_iter`` (hooks included: logs, checkpoints) ends iteration n."""
    run_iter = IterBasedTrainLoop.run_iter

    def run_iter_then_kill(self, data_batch):
        run_iter(self, data_batch)
        if self._iter == n:
            _sigkill()

    IterBasedTrainLoop.run_iter = run_iter_then_kill


def kill_while_saving(name):
    """SIGKILL inside ``torch.save`` of the checkpoint ``name``, after writing half of its bytes to the
    file that mmengine (or mmext) writes it to."""
    save_checkpoint, save = Runner.save_checkpoint, torch.save
    saving = []

    def tracked_save_checkpoint(self, out_dir, filename, *args, **kwargs):
        saving.append(filename)
        try:
            return save_checkpoint(self, out_dir, filename, *args, **kwargs)
        finally:
            saving.pop()

    def half_save(obj, f, *args, **kwargs):
        if not saving or saving[-1] != name:
            return save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[:len(data) // 2])
        f.flush()
        if hasattr(f, 'fileno') and not isinstance(f, io.BytesIO):
            os.fsync(f.fileno())
        _sigkill()

    Runner.save_checkpoint = tracked_save_checkpoint
    torch.save = half_save


def main():
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--after-iter', type=int)
    group.add_argument('--while-saving')
    args, train_args = parser.parse_known_args()
    if args.after_iter is not None:
        kill_after_iter(args.after_iter)
    else:
        kill_while_saving(args.while_saving)
    sys.argv = [str(TRAIN), *train_args]
    runpy.run_path(str(TRAIN), run_name='__main__')


if __name__ == '__main__':
    main()
