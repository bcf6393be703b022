"""mmsegmentation decode heads."""
from .net2vec_head import Net2VecHead
from .object_context_head import ObjectContextHead
from .point_rend_head import PointRendHead

__all__ = ['ObjectContextHead', 'PointRendHead', 'Net2VecHead']
