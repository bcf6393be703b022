"""mmsegmentation decode heads."""
from .object_context_head import ObjectContextHead

__all__ = ['ObjectContextHead']
