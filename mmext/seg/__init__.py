"""mmsegmentation plugins (registered into ``mmseg.registry``)."""
from . import datasets, heads, hooks  # noqa: F401
