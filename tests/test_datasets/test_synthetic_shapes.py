import json

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmdet.datasets import CocoDataset
from mmdet.datasets.transforms import LoadAnnotations as LoadInstances
from mmdet.registry import DATASETS as DET_DATASETS
from mmengine.registry import DefaultScope
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations as LoadSegMap
from mmseg.registry import DATASETS as SEG_DATASETS
from pycocotools import mask as mask_util

import mmext  # noqa: F401  (registers the dataset classes)
from mmext.datasets.synthetic_shapes import (CLASSES, CROSS, MIN_VISIBLE_AREA, NUM_OBJECTS_RANGE,
                                             RING, ensure_synthetic_shapes, main, render_scene,
                                             write_dataset)

SEED, SIZE, NUM_TRAIN, NUM_VAL = 0, 64, 6, 2


def scene(seed=SEED, split=0, index=0, size=SIZE):
    """The scene that write_dataset stores as image ``index`` of split ``split``."""
    return render_scene(np.random.default_rng([seed, split, index]), size)


def read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp('shapes'), seed=SEED, num_train=NUM_TRAIN,
                         num_val=NUM_VAL, size=SIZE, progress=False)


def test_render_scene_is_deterministic_per_key():
    image, semantic, instances = scene()
    again = scene()
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert semantic.shape == (SIZE, SIZE) and semantic.dtype == np.uint8
    assert image.tobytes() == again[0].tobytes()
    assert semantic.tobytes() == again[1].tobytes()
    assert [c for c, _ in instances] == [c for c, _ in again[2]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(instances, again[2]))
    other = scene(seed=SEED + 1)
    assert not np.array_equal(image, other[0])
    assert not np.array_equal(semantic, other[1])


@pytest.mark.parametrize('index', range(6))
def test_semantic_map_is_the_instances_painted_by_class(index):
    _, semantic, instances = scene(index=index, size=128)
    assert 1 <= len(instances) <= NUM_OBJECTS_RANGE[1]  # objects that find no place are left out
    masks = np.stack([mask for _, mask in instances])
    assert masks.sum(0).max() == 1  # disjoint
    np.testing.assert_array_equal(masks.any(0), semantic > 0)
    for class_id, mask in instances:
        assert 1 <= class_id < len(CLASSES)
        assert mask.sum() >= MIN_VISIBLE_AREA
        assert (semantic[mask] == class_id).all()


def test_thin_parts_and_sizes_vary():
    areas, thin_left = [], []
    for index in range(12):
        for class_id, mask in scene(index=index, size=128)[2]:
            areas.append(mask.sum())
            if class_id in (RING, CROSS):
                eroded = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
                thin_left.append(eroded.sum() / mask.sum())
    assert max(areas) > 10 * min(areas)
    assert min(thin_left) < 0.5  # a 5x5 erosion removes most of some ring or cross


def test_written_images_and_label_maps_are_the_renders(data_root):
    for split_index, (split, count) in enumerate((('train', NUM_TRAIN), ('val', NUM_VAL))):
        names = sorted(p.name for p in (data_root / 'img_dir' / split).iterdir())
        assert names == [f'{i:05d}.png' for i in range(count)]
        for index, name in enumerate(names):
            image, semantic, _ = scene(split=split_index, index=index)
            np.testing.assert_array_equal(read_rgb(data_root / 'img_dir' / split / name), image)
            label = cv2.imread(str(data_root / 'ann_dir' / split / name), cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.shape == (SIZE, SIZE)
            np.testing.assert_array_equal(label, semantic)
    meta = json.loads((data_root / 'meta.json').read_text())
    assert (meta['seed'], meta['num_train'], meta['num_val'], meta['size']) == (SEED, 6, 2, SIZE)


def test_image_does_not_depend_on_split_size(data_root, tmp_path):
    fewer = write_dataset(tmp_path, seed=SEED, num_train=3, num_val=1, size=SIZE, progress=False)
    for split, count in (('train', 3), ('val', 1)):
        for index in range(count):
            name = f'{index:05d}.png'
            np.testing.assert_array_equal(read_rgb(fewer / 'img_dir' / split / name),
                                          read_rgb(data_root / 'img_dir' / split / name))


def test_coco_annotations_are_tight_and_match_the_label_maps(data_root):
    coco = json.loads((data_root / 'annotations' / 'instances_train.json').read_text())
    assert [(c['id'], c['name']) for c in coco['categories']] == list(enumerate(CLASSES))[1:]
    assert [(i['id'], i['file_name'], i['width'], i['height']) for i in coco['images']] == [
        (i + 1, f'{i:05d}.png', SIZE, SIZE) for i in range(NUM_TRAIN)]
    assert len({a['id'] for a in coco['annotations']}) == len(coco['annotations'])
    for image in coco['images']:
        semantic = cv2.imread(str(data_root / 'ann_dir' / 'train' / image['file_name']),
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


def test_stock_mmseg_dataset_reads_the_folder(data_root):
    dataset = BaseSegDataset(
        data_root=str(data_root), data_prefix=dict(img_path='img_dir/train',
                                                   seg_map_path='ann_dir/train'),
        img_suffix='.png', seg_map_suffix='.png', metainfo=dict(classes=CLASSES),
        pipeline=[LoadSegMap()])
    assert len(dataset) == NUM_TRAIN
    np.testing.assert_array_equal(dataset[4]['gt_seg_map'], scene(index=4)[1])


def test_stock_mmdet_dataset_reads_the_folder(data_root):
    dataset = CocoDataset(
        data_root=str(data_root), ann_file='annotations/instances_val.json',
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


def test_ensure_reuses_a_matching_folder_and_regenerates_otherwise(tmp_path):
    root = tmp_path / 'shapes'
    params = dict(num_train=2, num_val=1, size=SIZE)
    assert ensure_synthetic_shapes(root, seed=0, **params) == root
    written = (root / 'meta.json').stat().st_mtime_ns
    ensure_synthetic_shapes(root, seed=0, **params)
    assert (root / 'meta.json').stat().st_mtime_ns == written
    first = read_rgb(root / 'img_dir' / 'train' / '00000.png')

    ensure_synthetic_shapes(root, seed=1, **params)
    assert json.loads((root / 'meta.json').read_text())['seed'] == 1
    np.testing.assert_array_equal(read_rgb(root / 'img_dir' / 'train' / '00000.png'),
                                  scene(seed=1)[0])
    assert not np.array_equal(read_rgb(root / 'img_dir' / 'train' / '00000.png'), first)
    assert [p.name for p in tmp_path.iterdir()] == ['shapes']  # no staging or stale folders left
    (tmp_path / 'probe').mkdir()
    assert root.stat().st_mode == (tmp_path / 'probe').stat().st_mode  # as readable as any folder


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


def test_registered_datasets_generate_on_first_use(tmp_path):
    root = tmp_path / 'shapes'
    synthesis = dict(num_train=3, num_val=1, size=SIZE)
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = SEG_DATASETS.build(
            dict(type='SyntheticShapesDataset', data_root=str(root), synthesis=synthesis,
                 data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                 pipeline=[dict(type='LoadAnnotations')]))
    assert len(seg) == 3 and seg.metainfo['classes'] == CLASSES
    np.testing.assert_array_equal(seg[2]['gt_seg_map'], scene(index=2)[1])

    written = (root / 'meta.json').stat().st_mtime_ns
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_DATASETS.build(
            dict(type='SyntheticShapesCocoDataset', data_root=str(root), synthesis=synthesis,
                 ann_file='annotations/instances_val.json', data_prefix=dict(img='img_dir/val/'),
                 pipeline=[]))
    assert (root / 'meta.json').stat().st_mtime_ns == written  # reused, not regenerated
    assert len(det) == 1 and det.metainfo['classes'] == CLASSES[1:]
    labels = [instance['bbox_label'] for instance in det.get_data_info(0)['instances']]
    assert labels == [c - 1 for c, _ in scene(split=1, index=0)[2]]


def test_command_line(tmp_path, capsys):
    root = tmp_path / 'shapes'
    argv = ['--data-root', str(root), '--seed', '3', '--num-train', '2', '--num-val', '1',
            '--size', str(SIZE)]
    assert main(argv) == root
    assert str(root) in capsys.readouterr().out
    meta = json.loads((root / 'meta.json').read_text())
    assert (meta['seed'], meta['num_train'], meta['num_val'], meta['size']) == (3, 2, 1, SIZE)
    inode = root.stat().st_ino
    main(argv)
    assert root.stat().st_ino == inode
    main(argv + ['--force'])
    assert root.stat().st_ino != inode
