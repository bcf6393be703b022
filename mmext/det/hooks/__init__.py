"""mmdetection hooks."""
from .dlde_means_hook import DLDEMeansHook

__all__ = ['DLDEMeansHook']
