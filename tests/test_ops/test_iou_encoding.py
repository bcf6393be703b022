"""IoU mask encoding and intersect decoding against closed forms (the formulas: docs/net2vec.md)."""
import pytest
import torch

from mmext.ops.iou_encoding import intersect_decode, intersect_encode, iou_encode, same_padding


def test_same_padding_puts_the_extra_pixel_at_the_back():
    assert [same_padding(k) for k in (1, 2, 3, 4, 5)] == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]


def test_intersect_of_a_2x2_box_extends_forward():
    # Even kernels: the window of (i, j) covers rows i..i+1 and columns j..j+1.
    inter = intersect_encode(torch.ones(1, 1, 3, 3), kernel_size=2, normalize_by='none')
    assert inter[0, 0].tolist() == [[4, 4, 2], [4, 4, 2], [2, 2, 1]]


def test_iou_closed_forms():
    smooth = 1e-7
    empty = iou_encode(torch.zeros(1, 1, 4, 5), kernel_size=(2, 3), smooth=smooth)
    torch.testing.assert_close(empty, torch.full_like(empty, smooth / (6 + smooth)))
    assert iou_encode(torch.tensor([[[[2.0]]]]), kernel_size=1).item() == pytest.approx(2.0)  # not clipped
    # A 3x3 box on a 3x3 square of ones, centre: I = 9, |M| = 9, union = 9 + 9 - 9.
    square = torch.zeros(1, 1, 7, 7)
    square[..., 2:5, 2:5] = 1
    assert iou_encode(square, kernel_size=3)[0, 0, 3, 3].item() == pytest.approx(1.0)
    # One pixel off: I = 6, union = 9 + 9 - 6 = 12.
    assert iou_encode(square, kernel_size=3)[0, 0, 3, 4].item() == pytest.approx(0.5)


def test_target_normalization_of_an_empty_mask_is_zero_not_nan():
    out = intersect_encode(torch.zeros(2, 1, 4, 4), kernel_size=3, normalize_by='target')
    assert torch.equal(out, torch.zeros_like(out))


def test_one_by_one_proto_decode_is_identity():
    e = torch.rand(2, 1, 5, 6)
    torch.testing.assert_close(intersect_decode(e, proto_shape=[[3.0]]), e)


def test_decode_of_an_impulse_paints_the_normalized_proto():
    proto = torch.tensor([[1.0, 2.0, 0.0], [0.0, 3.0, 4.0]])  # (2, 3): pt = 0, pl = 1
    impulse = torch.zeros(1, 1, 6, 7)
    impulse[0, 0, 2, 3] = 1
    decoded = intersect_decode(impulse, proto_shape=proto)
    expected = torch.zeros(6, 7)
    expected[2:4, 2:5] = proto / proto.sum()  # P[u, v] lands on (2 + u - pt, 3 + v - pl)
    torch.testing.assert_close(decoded[0, 0], expected)


def test_decode_of_ones_with_a_2x2_box():
    decoded = intersect_decode(torch.ones(1, 1, 2, 2), kernel_size=2)
    assert decoded[0, 0].tolist() == [[0.25, 0.5], [0.5, 1.0]]


@pytest.mark.parametrize('shape', [(3, 3), (2, 4), (4, 2), (5, 3), (1, 4)])
def test_adjointness(shape):
    gen = torch.Generator().manual_seed(0)
    masks, enc = torch.rand(2, 1, 9, 11, generator=gen), torch.rand(2, 1, 9, 11, generator=gen)
    proto = torch.rand(*shape, generator=gen)
    lhs = (intersect_encode(masks, proto, normalize_by='none') * enc).sum()
    rhs = proto.sum() * (masks * intersect_decode(enc, proto)).sum()
    torch.testing.assert_close(lhs, rhs)


@pytest.mark.parametrize('size', [1, 2, 3, (4, 7), (6, 5), 25])
def test_box_path_equals_the_direct_convolution(size):
    gen = torch.Generator().manual_seed(1)
    masks = (torch.rand(2, 1, 40, 33, generator=gen) > 0.6).float() * torch.rand(2, 1, 40, 33, generator=gen)
    kh, kw = (size, size) if isinstance(size, int) else size
    ones = torch.ones(kh, kw)
    for fn in (iou_encode, intersect_encode, intersect_decode):
        torch.testing.assert_close(fn(masks, kernel_size=size), fn(masks, proto_shape=ones),
                                   rtol=0, atol=1e-5)


def test_mass_is_conserved_in_the_interior():
    enc = torch.zeros(1, 1, 20, 20)
    enc[0, 0, 6:14, 5:12] = torch.rand(8, 7)
    for kwargs in (dict(kernel_size=(3, 4)), dict(proto_shape=torch.rand(5, 2) + 0.1)):
        torch.testing.assert_close(intersect_decode(enc, **kwargs).sum(), enc.sum())


@pytest.mark.parametrize('masks, kwargs, match', [
    ([[0.0]], dict(kernel_size=1), 'torch.Tensor'),
    (torch.zeros(1, 4, 4), dict(kernel_size=1), r'\(B, 1, H, W\)'),
    (torch.zeros(1, 2, 4, 4), dict(kernel_size=1), r'\(B, 1, H, W\)'),
    (torch.zeros(1, 1, 4, 4), dict(kernel_size=5), 'smaller than the kernel'),
    (torch.zeros(1, 1, 4, 4), dict(proto_shape=[[1.0, -1.0]]), 'non-negative'),
    (torch.zeros(1, 1, 4, 4), dict(proto_shape=[[0.0, 0.0]]), 'not all zero'),
    (torch.zeros(1, 1, 4, 4), dict(), 'one of proto_shape and kernel_size'),
])
def test_bad_input(masks, kwargs, match):
    for fn in (iou_encode, intersect_encode, intersect_decode):
        with pytest.raises(ValueError, match=match):
            fn(masks, **kwargs)


def test_encoders_of_an_empty_mask():
    empty = torch.zeros(2, 1, 6, 7)
    iou = iou_encode(empty, kernel_size=(3, 2), smooth=1e-7)
    torch.testing.assert_close(iou, torch.full_like(iou, 1e-7 / (6 + 1e-7)))
    assert torch.equal(intersect_encode(empty, kernel_size=3, normalize_by='target'), torch.zeros_like(empty))


def test_iou_encoding_of_a_mask_smaller_than_the_kernel():
    with pytest.raises(ValueError, match=r'smaller than the kernel \(5, 3\)'):
        iou_encode(torch.ones(1, 1, 4, 8), kernel_size=(5, 3))
