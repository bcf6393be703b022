"""mmsegmentation metrics."""
from .boundary_iou_metric import BoundaryIoUMetric
from .set_iou_metric import SetIoUMetric

__all__ = ['BoundaryIoUMetric', 'SetIoUMetric']
