"""The ``loss_decode`` loop of every mmext decode head."""
from typing import Dict

import torch
import torch.nn as nn


def sum_loss_decode(loss_decode: nn.Module, *args, prefix: str = '', **kwargs) -> Dict[str, torch.Tensor]:
    """Apply each term of a head's ``loss_decode`` and key it by ``prefix + loss_name``.

    Terms that share a name are summed, as mmseg's ``BaseDecodeHead.loss_by_feat`` does (mmseg's
    ``PointHead`` keeps only the last of them instead).

    Args:
        loss_decode: one mmseg loss, or an ``nn.ModuleList`` of them.
        *args, **kwargs: the call of each loss, e.g. ``(logits, labels, ignore_index=255)``.
        prefix: put before every loss name, e.g. 'point' for ``pointloss_ce``.

    Returns:
        {name: scalar loss}.
    """
    losses = {}
    for loss in loss_decode if isinstance(loss_decode, nn.ModuleList) else [loss_decode]:
        name = prefix + loss.loss_name
        value = loss(*args, **kwargs)
        losses[name] = losses[name] + value if name in losses else value
    return losses
