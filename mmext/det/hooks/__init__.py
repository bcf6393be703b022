"""mmdetection hooks."""
from .class_check_hook import DetClassCheckHook
from .dlde_means_hook import DLDEMeansHook

__all__ = ['DetClassCheckHook', 'DLDEMeansHook']
