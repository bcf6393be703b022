import json

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets import CocoDataset
from mmdet.datasets.transforms import LoadAnnotations as LoadInstances
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations as LoadSegMap
from pycocotools import mask as mask_util

from mmext.datasets.dataset_folder import (GENERATOR_VERSION, ensure_synthetic_shapes,
                                           render_dataset_scene, write_dataset)
from mmext.datasets.shape_scenes import CLASSES

SEED, SIZE, NUM_TRAIN, NUM_VAL = 0, 64, 6, 2


def scene(seed=SEED, split=0, index=0):
    return render_dataset_scene(seed, split, index, SIZE)


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture(scope='module')
def written_folder(tmp_path_factory):
    """A dataset written directly by write_dataset with this module's parameters."""
    return write_dataset(tmp_path_factory.mktemp('shapes'), seed=SEED, num_train=NUM_TRAIN,
                         num_val=NUM_VAL, size=SIZE, progress=False)


def test_written_images_and_label_maps_are_the_renders(written_folder):
    for split_index, (split, count) in enumerate((('train', NUM_TRAIN), ('val', NUM_VAL))):
        names = sorted(p.name for p in (written_folder / 'img_dir' / split).iterdir())
        assert names == [f'{i:05d}.png' for i in range(count)]
        for index, name in enumerate(names):
            image, semantic, _ = scene(split=split_index, index=index)
            np.testing.assert_array_equal(read_rgb(written_folder / 'img_dir' / split / name), image)
            label = cv2.imread(str(written_folder / 'ann_dir' / split / name), cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.shape == (SIZE, SIZE)
            np.testing.assert_array_equal(label, semantic)
    meta = json.loads((written_folder / 'meta.json').read_text())
    assert (meta['seed'], meta['num_train'], meta['num_val'], meta['size']) == (SEED, 6, 2, SIZE)


def test_image_does_not_depend_on_split_size(written_folder, tmp_path):
    fewer = write_dataset(tmp_path, seed=SEED, num_train=3, num_val=1, size=SIZE, progress=False)
    for split, count in (('train', 3), ('val', 1)):
        for index in range(count):
            name = f'{index:05d}.png'
            np.testing.assert_array_equal(read_rgb(fewer / 'img_dir' / split / name),
                                          read_rgb(written_folder / 'img_dir' / split / name))


def test_coco_annotations_are_tight_and_match_the_label_maps(written_folder):
    coco = json.loads((written_folder / 'annotations' / 'instances_train.json').read_text())
    assert [(c['id'], c['name']) for c in coco['categories']] == list(enumerate(CLASSES))[1:]
    assert [(i['id'], i['file_name'], i['width'], i['height']) for i in coco['images']] == [
        (i + 1, f'{i:05d}.png', SIZE, SIZE) for i in range(NUM_TRAIN)]
    assert len({a['id'] for a in coco['annotations']}) == len(coco['annotations'])
    for image in coco['images']:
        semantic = cv2.imread(str(written_folder / 'ann_dir' / 'train' / image['file_name']),
                              cv2.IMREAD_UNCHANGED)
        anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        assert len(anns) == len(scene(index=image['id'] - 1)[2])
        union = np.zeros_like(semantic, bool)
        for ann in anns:
            assert isinstance(ann['segmentation']['counts'], str) and ann['iscrowd'] == 0
            mask = mask_util.decode(ann['segmentation']).astype(bool)
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            assert ann['area'] == mask.sum()
            assert (semantic[mask] == ann['category_id']).all()
            assert not (union & mask).any()
            union |= mask
        np.testing.assert_array_equal(union, semantic > 0)


def test_stock_mmseg_dataset_reads_the_folder(written_folder):
    dataset = BaseSegDataset(
        data_root=str(written_folder), data_prefix=dict(img_path='img_dir/train',
                                                   seg_map_path='ann_dir/train'),
        img_suffix='.png', seg_map_suffix='.png', metainfo=dict(classes=CLASSES),
        pipeline=[LoadSegMap()])
    assert len(dataset) == NUM_TRAIN
    np.testing.assert_array_equal(dataset[4]['gt_seg_map'], scene(index=4)[1])


def test_stock_mmdet_dataset_reads_the_folder(written_folder):
    dataset = CocoDataset(
        data_root=str(written_folder), ann_file='annotations/instances_val.json',
        data_prefix=dict(img='img_dir/val/'), metainfo=dict(classes=CLASSES[1:]),
        pipeline=[LoadImageFromFile(), LoadInstances(with_mask=True)])
    assert len(dataset) == NUM_VAL
    image, _, instances = scene(split=1, index=1)
    results = dataset[1]
    np.testing.assert_array_equal(results['img'][..., ::-1], image)  # mmcv loads BGR
    np.testing.assert_array_equal(results['gt_masks'].masks, [mask for _, mask in instances])
    assert results['gt_bboxes_labels'].tolist() == [c - 1 for c, _ in instances]
    x1, y1, x2, y2 = results['gt_bboxes'].tensor[0].tolist()
    ys, xs = np.nonzero(instances[0][1])
    assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def files(root):
    """Every file under ``root`` with its bytes."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in root.rglob('*') if path.is_file()}


PARAMS = dict(seed=0, num_train=2, num_val=1, size=SIZE)


def test_ensure_reuses_a_matching_folder(tmp_path):
    root = tmp_path / 'shapes'
    assert ensure_synthetic_shapes(root, **PARAMS) == root
    written = (root / 'meta.json').stat().st_mtime_ns
    assert ensure_synthetic_shapes(root, **PARAMS) == root
    assert (root / 'meta.json').stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.iterdir()] == ['shapes']  # no staging or stale folders left
    (tmp_path / 'probe').mkdir()
    assert root.stat().st_mode == (tmp_path / 'probe').stat().st_mode  # as readable as any folder


@pytest.mark.parametrize('other', [dict(seed=1), dict(num_train=3), dict(num_val=2), dict(size=32)])
def test_ensure_refuses_other_parameters_naming_both_and_keeps_the_folder(tmp_path, other):
    root = tmp_path / 'shapes'
    ensure_synthetic_shapes(root, **PARAMS)
    before = files(root)
    with pytest.raises(FileExistsError) as error:
        ensure_synthetic_shapes(root, **dict(PARAMS, **other))
    message = str(error.value)
    assert str(root) in message
    assert 'seed=0, num_train=2, num_val=1, size=64' in message
    assert ', '.join(f'{k}={v}' for k, v in dict(PARAMS, **other).items()) in message
    assert files(root) == before  # byte for byte
    assert [p.name for p in tmp_path.iterdir()] == ['shapes']


def test_force_replaces_other_parameters(tmp_path):
    root = tmp_path / 'shapes'
    ensure_synthetic_shapes(root, **PARAMS)
    ensure_synthetic_shapes(root, **dict(PARAMS, seed=1), force=True)
    assert json.loads((root / 'meta.json').read_text())['seed'] == 1
    np.testing.assert_array_equal(read_rgb(root / 'img_dir' / 'train' / '00000.png'), scene(seed=1)[0])
    assert [p.name for p in tmp_path.iterdir()] == ['shapes']


def test_ensure_replaces_a_folder_of_another_generator_version(tmp_path):
    root = tmp_path / 'shapes'
    ensure_synthetic_shapes(root, **PARAMS)
    meta = json.loads((root / 'meta.json').read_text())
    (root / 'meta.json').write_text(json.dumps(dict(meta, generator_version=GENERATOR_VERSION - 1)))
    ensure_synthetic_shapes(root, **PARAMS)
    assert json.loads((root / 'meta.json').read_text()) == meta


def test_ensure_replaces_a_partial_folder_but_not_foreign_files(tmp_path):
    partial = tmp_path / 'partial'
    (partial / 'img_dir' / 'train').mkdir(parents=True)
    (partial / 'img_dir' / 'train' / '00000.png').write_bytes(b'truncated')
    ensure_synthetic_shapes(partial, num_train=1, num_val=1, size=SIZE)
    np.testing.assert_array_equal(read_rgb(partial / 'img_dir' / 'train' / '00000.png'), scene()[0])

    foreign = tmp_path / 'foreign'  # someone else's dataset in the same layout
    (foreign / 'img_dir' / 'train').mkdir(parents=True)
    (foreign / 'img_dir' / 'train' / 'photo.png').write_bytes(b'mine')
    with pytest.raises(FileExistsError):
        ensure_synthetic_shapes(foreign, num_train=1, num_val=1, size=SIZE)
    assert (foreign / 'img_dir' / 'train' / 'photo.png').read_bytes() == b'mine'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['foreign', 'partial']
