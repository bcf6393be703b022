"""The synthetic shapes dataset for instance detection and segmentation (:mod:`mmext.datasets`)."""
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from mmext.datasets import CLASSES, PALETTE, SynthesizeOnInitMixin


@DATASETS.register_module()
class SyntheticShapesCocoDataset(SynthesizeOnInitMixin, CocoDataset):
    """Synthetic shape scenes as COCO instances (visible-pixel RLE masks), generated on first use.

    Args:
        data_root: dataset folder (default ``data/synthetic_shapes``).
        synthesis: keyword arguments of :func:`mmext.datasets.ensure_synthetic_shapes` (``seed``,
            ``num_train``, ``num_val``, ``size``), or None to read ``data_root`` as it is.
        **kwargs: arguments of :class:`~mmdet.datasets.CocoDataset`, e.g.
            ``ann_file='annotations/instances_train.json', data_prefix=dict(img='img_dir/train/')``.
    """
    # COCO category ids 1..5 are the semantic label ids of the object classes.
    METAINFO = dict(classes=CLASSES[1:], palette=[tuple(rgb) for rgb in PALETTE[1:]])
