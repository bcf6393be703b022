import numpy as np
import pytest
from mmdet.registry import DATASETS as DET_DATASETS
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS as SEG_DATASETS

import mmext  # noqa: F401  (registers the dataset classes)
from mmext.datasets.dataset_folder import render_dataset_scene
from mmext.datasets.shape_scenes import CLASSES

SIZE = 64


def test_registered_datasets_generate_on_first_use(tmp_path):
    root = tmp_path / 'shapes'
    synthesis = dict(num_train=3, num_val=1, size=SIZE)
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG_DATASETS.build(
            dict(type='SyntheticShapesDataset', data_root=str(root), synthesis=synthesis,
                 data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                 pipeline=[dict(type='LoadAnnotations')]))
    assert len(seg) == 3 and seg.metainfo['classes'] == CLASSES
    np.testing.assert_array_equal(seg[2]['gt_seg_map'], render_dataset_scene(0, 0, 2, SIZE)[1])

    written = (root / 'meta.json').stat().st_mtime_ns
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_DATASETS.build(
            dict(type='SyntheticShapesCocoDataset', data_root=str(root), synthesis=synthesis,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='img_dir/val/'),
                 pipeline=[]))
    assert (root / 'meta.json').stat().st_mtime_ns == written  # reused, not regenerated
    assert len(det) == 1 and det.metainfo['classes'] == CLASSES[1:]
    labels = [instance['bbox_label'] for instance in det.get_data_info(0)['instances']]
    assert labels == [c - 1 for c, _ in render_dataset_scene(0, 1, 0, SIZE)[2]]



def test_a_dataset_of_other_parameters_is_refused_not_regenerated(tmp_path):
    """A tiny test config run over the folder of the full configs' dataset stops, naming both."""
    root = tmp_path / 'shapes'
    build = dict(type='SyntheticShapesDataset', data_root=str(root),
                 data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'), pipeline=[])
    with DefaultScope.overwrite_default_scope('mmseg'):
        SEG_DATASETS.build(dict(build, synthesis=dict(num_train=3, num_val=2, size=SIZE)))
        meta = (root / 'meta.json').read_bytes()
        with pytest.raises(FileExistsError, match='num_train=3, num_val=2.*num_train=2, num_val=1'):
            SEG_DATASETS.build(dict(build, synthesis=dict(num_train=2, num_val=1, size=SIZE)))
        assert (root / 'meta.json').read_bytes() == meta
        assert len(SEG_DATASETS.build(dict(build, synthesis=None))) == 2  # read as it is


def test_a_lazy_dataset_gives_its_metainfo_and_synthesizes_on_first_use(tmp_path):
    root = tmp_path / 'shapes'
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG_DATASETS.build(
            dict(type='SyntheticShapesDataset', data_root=str(root), lazy_init=True,
                 synthesis=dict(num_train=2, num_val=1, size=SIZE),
                 data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'), pipeline=[]))
    assert seg.metainfo['classes'] == CLASSES and not root.exists()
    assert len(seg) == 2 and (root / 'meta.json').is_file()  # __len__ runs full_init
