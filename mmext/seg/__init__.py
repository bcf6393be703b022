"""mmsegmentation plugins (registered into ``mmseg.registry``)."""
from . import datasets, evaluation, heads, hooks, losses  # noqa: F401
