"""Batches of a config's dataloaders, read in the main process in dataset order, for measuring models
on real data without a Runner."""
import copy
from typing import Iterator, List, Optional

from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner


def plain_dataloader_cfg(dataloader_cfg: ConfigDict, batch_size: Optional[int] = None) -> ConfigDict:
    """A copy of a dataloader config that loads in the main process (``num_workers=0``), with a
    finite sampler (mmengine's ``DefaultSampler``, no shuffling) and optionally another batch size."""
    cfg = copy.deepcopy(dataloader_cfg)
    cfg.update(num_workers=0, persistent_workers=False,
               sampler=dict(type='DefaultSampler', shuffle=False))
    if batch_size is not None:
        cfg.batch_size = batch_size
    return cfg


def iter_batches(cfg: Config, split: str = 'train', max_batches: Optional[int] = None,
                 batch_size: Optional[int] = None) -> Iterator[dict]:
    """The first ``max_batches`` batches (all if None) of the config's ``<split>_dataloader``, not
    preprocessed, one at a time. The dataloader runs in the main process in dataset order
    (:func:`plain_dataloader_cfg`); the embedded dataset is generated on first use."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader = Runner.build_dataloader(plain_dataloader_cfg(cfg[f'{split}_dataloader'], batch_size))
    for index, batch in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            return
        yield batch


def load_batches(cfg: Config, split: str = 'train', max_batches: Optional[int] = None,
                 batch_size: Optional[int] = None) -> List[dict]:
    """:func:`iter_batches` as a list in memory; raises if the dataloader gives no batch."""
    batches = list(iter_batches(cfg, split, max_batches, batch_size))
    if not batches:
        raise ValueError(f'load_batches: the {split} dataloader gave no batch (an empty dataset?)')
    return batches
