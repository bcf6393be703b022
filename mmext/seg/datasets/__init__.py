"""mmsegmentation datasets and data transforms."""
from .synthetic_shapes import SyntheticShapesDataset
from .transforms import IntersectDecode, IoUEncode

__all__ = ['SyntheticShapesDataset', 'IoUEncode', 'IntersectDecode']
