"""mmsegmentation data transforms."""
from .iou_encoding import IntersectDecode, IoUEncode

__all__ = ['IoUEncode', 'IntersectDecode']
