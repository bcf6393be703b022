"""mmsegmentation decode heads."""
from .object_context_head import ObjectContextHead
from .point_rend_head import PointRendHead

__all__ = ['ObjectContextHead', 'PointRendHead']
