"""mmdetection hooks."""
from mmdet.registry import HOOKS

from mmext.engine import FiniteCheckHook
from .class_check_hook import DetClassCheckHook
from .dlde_means_hook import DLDEMeansHook

HOOKS.register_module(module=FiniteCheckHook)

__all__ = ['DetClassCheckHook', 'DLDEMeansHook', 'FiniteCheckHook']
