"""mmsegmentation hooks."""
from .class_check_hook import SegClassCheckHook

__all__ = ['SegClassCheckHook']
