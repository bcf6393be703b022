"""mmsegmentation hooks."""
from mmseg.registry import HOOKS

from mmext.engine import FiniteCheckHook
from .class_check_hook import SegClassCheckHook

HOOKS.register_module(module=FiniteCheckHook)

__all__ = ['SegClassCheckHook', 'FiniteCheckHook']
