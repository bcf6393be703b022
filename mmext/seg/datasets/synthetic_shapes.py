"""The synthetic shapes dataset for semantic segmentation (see :mod:`mmext.datasets`)."""
from typing import Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmext.datasets import CLASSES, PALETTE, SynthesizeOnInitMixin


@DATASETS.register_module()
class SyntheticShapesDataset(SynthesizeOnInitMixin, BaseSegDataset):
    """Synthetic shape scenes in the mmseg layout, generated into ``data_root`` on first use.

    Labels are 0 (background) and 1..5 (disk, square, triangle, ring, cross); background is a real
    class, so ``reduce_zero_label`` stays False.

    Args:
        concept: a class name (e.g. 'ring') to make a binary concept dataset for a Net2Vec probe:
            the classes become ('background', concept), the concept's pixels are 1 and every other
            labelled pixel 0. (mmseg's own class subsets, ``metainfo=dict(classes=...)``, would label
            the other shapes ``ignore_index`` instead: no negatives where they matter most.)
        data_root: dataset folder (default ``data/synthetic_shapes``).
        synthesis: keyword arguments of :func:`mmext.datasets.ensure_synthetic_shapes` (``seed``,
            ``num_train``, ``num_val``, ``size``), or None to read ``data_root`` as it is.
        **kwargs: arguments of :class:`~mmseg.datasets.BaseSegDataset`, e.g.
            ``data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train')``.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, concept: Optional[str] = None, img_suffix='.png', seg_map_suffix='.png',
                 reduce_zero_label=False, **kwargs):
        self.concept = concept
        if concept is not None:
            if concept not in CLASSES[1:]:
                raise ValueError(
                    f'SyntheticShapesDataset: concept must be one of {CLASSES[1:]}, got {concept!r}')
            if kwargs.get('metainfo'):
                raise ValueError('SyntheticShapesDataset: give either concept or metainfo, not both')
            kwargs['metainfo'] = dict(classes=(CLASSES[0], concept),
                                      palette=[PALETTE[0], PALETTE[CLASSES.index(concept)]])
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)

    def get_label_map(self, new_classes=None) -> Optional[dict]:
        """mmseg's label map of a class subset, or the concept's: its id to 1, every other id to 0."""
        if self.concept is None:
            return super().get_label_map(new_classes)
        return {i: int(name == self.concept) for i, name in enumerate(CLASSES)}
