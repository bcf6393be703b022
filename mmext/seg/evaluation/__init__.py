"""mmsegmentation evaluation metrics."""
from .metrics import BoundaryIoUMetric

__all__ = ['BoundaryIoUMetric']
