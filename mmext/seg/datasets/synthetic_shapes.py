"""The synthetic shapes dataset for semantic segmentation (see :mod:`mmext.datasets`)."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmext.datasets.synthetic_shapes import CLASSES, PALETTE, SynthesizeOnInitMixin


@DATASETS.register_module()
class SyntheticShapesDataset(SynthesizeOnInitMixin, BaseSegDataset):
    """Synthetic shape scenes in the mmseg layout, generated into ``data_root`` on first use.

    Labels are 0 (background) and 1..5 (disk, square, triangle, ring, cross); background is a real
    class, so ``reduce_zero_label`` stays False.

    Args:
        data_root: dataset folder (default ``data/synthetic_shapes``).
        synthesis: keyword arguments of :func:`mmext.datasets.ensure_synthetic_shapes` (``seed``,
            ``num_train``, ``num_val``, ``size``), or None to read ``data_root`` as it is.
        **kwargs: arguments of :class:`~mmseg.datasets.BaseSegDataset`, e.g.
            ``data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train')``.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
