"""mmdetection plugins (registered into ``mmdet.registry``)."""
from . import datasets, heads, hooks  # noqa: F401
