"""The hook that drives the 'manual' class-mean updates of :class:`~mmext.det.heads.DLDEHead`."""
from typing import List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader, DistributedSampler

from ..heads.dlde_head import DLDEHead


@HOOKS.register_module()
class DLDEMeansHook(Hook):
    """Set the class means of every ``means_update='manual'`` DLDE head from its accumulated sums.

    The update runs after every training epoch, or, with ``interval``, every ``interval``
    iterations (what an ``IterBasedTrainLoop`` needs). With ``init_pass=True`` a fresh run (not a
    resumed one) first makes one no-grad pass over the training data in train mode, so that the
    first epoch is classified against meaningful means rather than zero ones (torchsight's
    initialising pass). Heads in 'batch' mode update themselves and are left alone.

    Args:
        interval (int, optional): iterations between updates; None updates after each epoch.
        init_pass (bool): run the initialising pass before training. Default: False.
    """

    priority = 'NORMAL'

    def __init__(self, interval: Optional[int] = None, init_pass: bool = False):
        if interval is not None and interval < 1:
            raise ValueError(f'DLDEMeansHook: interval={interval} must be >= 1 (or None for epochs)')
        self.interval = interval
        self.init_pass = init_pass

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _manual_heads(self, runner) -> List[DLDEHead]:
        return [m for m in self._model(runner).modules()
                if isinstance(m, DLDEHead) and m.means_update == 'manual']

    def before_train(self, runner) -> None:
        heads = self._manual_heads(runner)
        if heads and self.interval is None and isinstance(runner.train_loop, IterBasedTrainLoop):
            raise ValueError('DLDEMeansHook: an IterBasedTrainLoop calls after_train_epoch only at the '
                             'end of training; set interval (iterations between mean updates).')
        for head in heads:
            head.means_hook_attached = True
        if heads and self.init_pass and runner.iter == 0:
            self._initialising_pass(runner, heads)

    @torch.no_grad()
    def _initialising_pass(self, runner, heads: List[DLDEHead]) -> None:
        """One pass over this rank's share of the training data that only accumulates embedding
        sums (in train mode, as torchsight's), then the first update. It reads the dataset through
        its own finite loader, leaving the training loop's sampler untouched."""
        model, train_loader = self._model(runner), runner.train_dataloader
        rank, world_size = get_dist_info()
        # Equal shares (padded by repetition): every batch all-reduces, so ranks must agree on count.
        sampler = DistributedSampler(train_loader.dataset, world_size, rank, shuffle=False)
        batch_size = train_loader.batch_size or train_loader.batch_sampler.batch_size  # batch samplers
        loader = DataLoader(train_loader.dataset, batch_size, sampler=sampler,
                            collate_fn=train_loader.collate_fn)
        was_training = model.training
        model.train()  # tracking runs in training mode only
        for data in loader:
            model(**model.data_preprocessor(data, True), mode='loss')  # tracking is the side effect
        model.train(was_training)
        for head in heads:
            head.update_means_from_sums()
        print_log(f'DLDEMeansHook: initial class means from {len(loader)} batches', logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval is not None and self.every_n_train_iters(runner, self.interval):
            self._update(runner)

    def after_train_epoch(self, runner) -> None:
        if self.interval is None:
            self._update(runner)

    def _update(self, runner) -> None:
        for head in self._manual_heads(runner):
            head.update_means_from_sums()
