"""IoUEncode / IntersectDecode pipeline transforms: the ops on (..., H, W) arrays, thresholds, keys."""
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import TRANSFORMS

from mmext.ops import intersect_decode, iou_encode
from mmext.seg.datasets import IntersectDecode, IoUEncode


def test_registered_for_mmseg_pipelines():
    init_default_scope('mmseg')
    assert isinstance(TRANSFORMS.build(dict(type='IoUEncode', kernel_size=3)), IoUEncode)
    assert isinstance(TRANSFORMS.build(dict(type='IntersectDecode', kernel_size=3)), IntersectDecode)


def test_iou_encode_of_a_label_map_selects_the_concept_and_ignores_255():
    labels = np.zeros((7, 7), np.uint8)
    labels[2:5, 2:5] = 4
    labels[0, :] = 255
    labels[6, 6] = 2
    out = IoUEncode(kernel_size=3, classes=[4])(dict(gt_seg_map=labels))
    square = torch.from_numpy((labels == 4).astype(np.float32))[None, None]
    assert out['gt_iou_map'].dtype == np.float32 and out['gt_seg_map'] is labels
    np.testing.assert_allclose(out['gt_iou_map'], iou_encode(square, kernel_size=3)[0, 0].numpy())
    assert out['gt_iou_map'][3, 3] == pytest.approx(1.0)


def test_thresholds_binarize_input_and_output():
    mask = np.array([[0.2, 0.6], [0.9, 0.4]], np.float32)
    out = IoUEncode(kernel_size=1, pre_thresh=0.5, post_thresh=0.4, key='m', out_key='e')(dict(m=mask))
    # pre: [[0, 1], [1, 0]], |M| = 2; 1x1 IoU is 1 / 2 on the mask, ~0 elsewhere; post > 0.4 keeps it.
    assert out['e'].tolist() == [[0, 1], [1, 0]]


def test_decode_of_a_stack_matches_the_op_per_map():
    maps = np.random.default_rng(0).random((2, 5, 6)).astype(np.float32)
    out = IntersectDecode(proto_shape=[[1, 2], [0, 1]], key='x', out_key='y')(dict(x=maps))
    expected = intersect_decode(torch.from_numpy(maps)[:, None], proto_shape=[[1, 2], [0, 1]])[:, 0]
    np.testing.assert_allclose(out['y'], expected.numpy(), rtol=1e-6)


def test_encode_then_decode_round_trip_of_an_interior_box():
    mask = np.zeros((9, 9), np.float32)
    mask[3:6, 3:6] = 1
    results = IoUEncode(kernel_size=3, key='m', post_thresh=0.99)(dict(m=mask))
    decoded = IntersectDecode(kernel_size=3, post_thresh=0.0)(results)['gt_decoded_mask']
    np.testing.assert_array_equal(decoded, mask)  # one IoU-1 hit paints the box back exactly


@pytest.mark.parametrize('make, match', [
    (lambda: IoUEncode(), 'one of proto_shape and kernel_size'),
    (lambda: IntersectDecode(kernel_size=(2, 0)), 'positive'),
    (lambda: IoUEncode(proto_shape=[[-1.0, 1.0]]), 'non-negative'),
])
def test_bad_protos_fail_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_missing_key_and_small_mask():
    with pytest.raises(KeyError, match="no 'gt_seg_map'"):
        IoUEncode(kernel_size=3)(dict(img=np.zeros((4, 4))))
    with pytest.raises(ValueError, match='smaller than the kernel'):
        IoUEncode(kernel_size=5)(dict(gt_seg_map=np.zeros((4, 4))))
    with pytest.raises(ValueError, match=r'\(\.\.\., H, W\)'):
        IoUEncode(kernel_size=1)(dict(gt_seg_map=np.zeros(4)))
