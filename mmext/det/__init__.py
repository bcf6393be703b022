"""mmdetection plugins (registered into ``mmdet.registry``)."""
from . import datasets  # noqa: F401
