"""Runs tools/train.py in this process and kills the process with SIGKILL at a chosen point, as a crash
(an out-of-memory kill, a pre-empted node) would: no exception, no clean-up, no flushed buffers.

    crash_train.py --after-iter N TRAIN_ARGS...      right after training iteration N
    crash_train.py --while-saving NAME TRAIN_ARGS... halfway through writing checkpoint NAME
                                                     (e.g. iter_4.pth): half of its bytes are on disk
    crash_train.py --after-saving NAME TRAIN_ARGS... right after checkpoint NAME is first written
    crash_train.py --before-removing NAME TRAIN_ARGS...
                                                     right before the checkpoint file NAME is deleted

With ``--stock-save-best`` the run saves best checkpoints with mmengine's own
``CheckpointHook._save_best_checkpoint`` instead of mmext's, to compare the two; without a kill point it
trains to the end.
"""
import argparse
import io
import os
import runpy
import signal
import sys
from pathlib import Path

import torch
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import IterBasedTrainLoop, Runner

TRAIN = Path(__file__).resolve().parents[2] / 'tools/train.py'
# Taken before tools/train.py imports mmext, which replaces it.
STOCK_SAVE_BEST = CheckpointHook._save_best_checkpoint


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


def kill_after_saving(name):
    """SIGKILL as soon as ``Runner.save_checkpoint`` returns from writing the checkpoint ``name``."""
    save_checkpoint = Runner.save_checkpoint

    def save_checkpoint_then_kill(self, out_dir, filename, *args, **kwargs):
        save_checkpoint(self, out_dir, filename, *args, **kwargs)
        if filename == name:
            _sigkill()

    Runner.save_checkpoint = save_checkpoint_then_kill


def kill_before_removing(name):
    """SIGKILL when the checkpoint file ``name`` is about to be deleted (through mmengine's file backend,
    as CheckpointHook deletes checkpoints)."""
    remove = LocalBackend.remove

    def kill_then_remove(self, filepath):
        if Path(filepath).name == name:
            _sigkill()
        remove(self, filepath)

    LocalBackend.remove = kill_then_remove


def with_stock_save_best():
    """Put mmengine's own ``_save_best_checkpoint`` back once tools/train.py has imported mmext: when the
    runner starts training."""
    train = Runner.train

    def train_with_stock_save_best(self):
        CheckpointHook._save_best_checkpoint = STOCK_SAVE_BEST
        return train(self)

    Runner.train = train_with_stock_save_best


KILLS = {'after_iter': kill_after_iter, 'while_saving': kill_while_saving, 'after_saving': kill_after_saving,
         'before_removing': kill_before_removing}


def main():
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False)
    parser.add_argument('--stock-save-best', action='store_true')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--after-iter', type=int)
    for point in ('--while-saving', '--after-saving', '--before-removing'):
        group.add_argument(point)
    args, train_args = parser.parse_known_args()
    if args.stock_save_best:
        with_stock_save_best()
    for point, kill in KILLS.items():
        if getattr(args, point) is not None:
            kill(getattr(args, point))
    sys.argv = [str(TRAIN), *train_args]
    runpy.run_path(str(TRAIN), run_name='__main__')


if __name__ == '__main__':
    main()
