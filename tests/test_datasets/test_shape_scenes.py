import cv2
import numpy as np
import pytest

from mmext.datasets.shape_scenes import (CLASSES, CROSS, CROSS_WIDTH_RANGE, EXTENT_RANGE,
                                         MIN_VISIBLE_AREA, NUM_OBJECTS_RANGE, RING,
                                         RING_WIDTH_RANGE, render_scene, sample_shape)


def scene(index=0, seed=0, size=128):
    return render_scene(np.random.default_rng([seed, 0, index]), size)


def test_render_scene_is_deterministic_per_key():
    image, semantic, instances = scene(size=64)
    again = scene(size=64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert semantic.shape == (64, 64) and semantic.dtype == np.uint8
    assert image.tobytes() == again[0].tobytes()
    assert semantic.tobytes() == again[1].tobytes()
    assert [c for c, _ in instances] == [c for c, _ in again[2]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(instances, again[2]))
    other = scene(seed=1, size=64)
    assert not np.array_equal(image, other[0])
    assert not np.array_equal(semantic, other[1])


@pytest.mark.parametrize('index', range(6))
def test_semantic_map_is_the_instances_painted_by_class(index):
    _, semantic, instances = scene(index)
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
        for class_id, mask in scene(index)[2]:
            areas.append(mask.sum())
            if class_id in (RING, CROSS):
                eroded = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
                thin_left.append(eroded.sum() / mask.sum())
    assert max(areas) > 10 * min(areas)
    assert min(thin_left) < 0.5  # a 5x5 erosion removes most of some ring or cross


def test_sampled_extents_and_part_widths_are_the_constants_at_128_px():
    rng = np.random.default_rng(0)
    shapes = [sample_shape(rng, 128) for _ in range(2000)]
    extents = [2 * shape.radius for shape in shapes]
    assert EXTENT_RANGE[0] <= min(extents) and max(extents) <= EXTENT_RANGE[1]
    for class_id, (low, high) in ((RING, RING_WIDTH_RANGE), (CROSS, CROSS_WIDTH_RANGE)):
        widths = [shape.width for shape in shapes if shape.class_id == class_id]
        assert low <= min(widths) and max(widths) <= high
        assert min(widths) < low + 0.5 and max(widths) > high - 0.5  # the whole range is used
