"""The mixin through which the registered synthetic shapes datasets generate their folder on first use."""
from typing import Optional

from .dataset_folder import DEFAULT_DATA_ROOT, ensure_synthetic_shapes


class SynthesizeOnInitMixin:
    """Mixin for a host dataset class: writes the synthetic shapes into ``data_root`` before the host
    loads its data list (``full_init``: at construction, or on first use under ``lazy_init=True``, so
    that reading the metainfo of a lazy dataset writes nothing).

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
        self._synthesis_root, self._synthesis = data_root, synthesis
        super().__init__(data_root=data_root, **kwargs)

    def full_init(self):
        if not self._fully_initialized and self._synthesis is not None:
            ensure_synthetic_shapes(self._synthesis_root, **self._synthesis)
        super().full_init()
