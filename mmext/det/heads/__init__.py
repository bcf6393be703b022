"""mmdetection dense heads."""
from .dlde_head import DLDEHead

__all__ = ['DLDEHead']
