"""Small model helpers for tests: seeded heads built under a fixed registry scope, their gradients."""
from typing import List

import torch
from mmengine.registry import DefaultScope


def build_seg_head(cls: type, **kwargs) -> torch.nn.Module:
    """``cls(**kwargs)`` after ``torch.manual_seed(0)``, under mmseg's default scope: a Runner built
    earlier in the process leaves its own scope current, and the head's losses must come from mmseg's
    registry."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return cls(**kwargs)


def parameter_grads(module: torch.nn.Module) -> List[torch.Tensor]:
    """The ``grad`` of every parameter of ``module`` that has one."""
    return [p.grad for p in module.parameters() if p.grad is not None]
