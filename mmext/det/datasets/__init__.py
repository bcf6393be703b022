"""mmdetection datasets."""
from .synthetic_shapes import SyntheticShapesCocoDataset

__all__ = ['SyntheticShapesCocoDataset']
