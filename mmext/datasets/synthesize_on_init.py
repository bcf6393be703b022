"""The mixin through which the registered synthetic shapes datasets generate their folder on first use."""
from typing import Optional

from .dataset_folder import DEFAULT_DATA_ROOT, ensure_synthetic_shapes


class SynthesizeOnInitMixin:
    """Mixin for a host dataset class: writes the synthetic shapes into ``data_root`` first.

    Put it before the host class among the bases, e.g.
    ``class SyntheticShapesCocoDataset(SynthesizeOnInitMixin, CocoDataset)``.

    Args:
        data_root: dataset folder, passed on to the host class.
        synthesis: keyword arguments of :func:`ensure_synthetic_shapes` (``seed``, ``num_train``,
            ``num_val``, ``size``; its defaults where left out), or None to read ``data_root``
            as it is.
    """

    def __init__(self, data_root: str = DEFAULT_DATA_ROOT, synthesis: Optional[dict] = dict(),
                 **kwargs):
        if synthesis is not None:
            ensure_synthetic_shapes(data_root, **synthesis)
        super().__init__(data_root=data_root, **kwargs)
