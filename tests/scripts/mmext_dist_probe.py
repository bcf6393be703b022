"""A test-only hook that records what every rank of a distributed run holds; the ``*_dist.py`` configs
in tests/configs import this module (``custom_imports``), so the tests put its folder on PYTHONPATH.

mmengine logs and checkpoints only rank 0's values; the tests compare all ranks.
"""
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Writes ``rank{r}_losses.jsonl`` (every iteration's logged values) and, after training,
    ``rank{r}_state.pth`` (the model's state dict: parameters and buffers) into the work_dir."""
    priority = 'LOWEST'  # after the hooks that change the model (e.g. DLDEMeansHook)

    def _path(self, runner, name):
        return osp.join(runner.work_dir, f'rank{get_rank()}_{name}')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        record = dict(iter=batch_idx + 1, **{k: float(v) for k, v in (outputs or {}).items()})
        with open(self._path(runner, 'losses.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                   self._path(runner, 'state.pth'))
