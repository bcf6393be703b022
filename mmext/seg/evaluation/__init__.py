"""mmsegmentation evaluation metrics."""
from .metrics import BoundaryIoUMetric, SetIoUMetric

__all__ = ['BoundaryIoUMetric', 'SetIoUMetric']
