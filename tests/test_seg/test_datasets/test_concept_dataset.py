"""SyntheticShapesDataset(concept=...): a binary concept dataset with the other shapes as negatives."""
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmext.datasets import CLASSES
from mmext.seg.datasets import SyntheticShapesDataset


def _dataset(data_root, **kwargs):
    init_default_scope('mmseg')
    return SyntheticShapesDataset(data_root=str(data_root),
                                  synthesis=dict(seed=0, num_train=3, num_val=1, size=64),
                                  data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                                  pipeline=[dict(type='LoadAnnotations')], **kwargs)


def test_concept_labels_are_one_and_every_other_label_zero(tmp_path):
    full, ring = _dataset(tmp_path), _dataset(tmp_path, concept='ring')
    assert ring.metainfo['classes'] == ('background', 'ring')
    for i in range(len(full)):
        labels, binary = full[i]['gt_seg_map'], ring[i]['gt_seg_map']
        np.testing.assert_array_equal(binary, (labels == CLASSES.index('ring')).astype(np.uint8))
    assert full.metainfo['classes'] == CLASSES  # the plain dataset is unchanged


@pytest.mark.parametrize('kwargs, match', [
    (dict(concept='hexagon'), 'concept must be one of'),
    (dict(concept='background'), 'concept must be one of'),
    (dict(concept='ring', metainfo=dict(classes=('background', 'ring'))), 'either concept or metainfo'),
])
def test_bad_concepts(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _dataset(tmp_path, **kwargs)
