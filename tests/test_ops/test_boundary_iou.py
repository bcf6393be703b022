"""Hand-computed checks of Boundary IoU (mmext.ops.boundary_iou)."""
import math

import pytest
import torch

from mmext.ops.boundary_iou import boundary_intersect_and_union, class_boundary_iou, inner_boundary


def _square(size=9, top=2, left=2, side=5):
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top:top + side, left:left + side] = True
    return mask


def _halves(height=4, width=6, split=3):
    """(H, W) label map: class 1 in the columns left of ``split``, class 0 from ``split`` on."""
    label = torch.zeros(height, width, dtype=torch.long)
    label[:, :split] = 1
    return label


def test_width_1_band_is_the_perimeter():
    square = _square()  # rows and columns 2..6 of a 9 x 9 image
    expected = square.clone()
    expected[3:6, 3:6] = False  # the 3 x 3 interior
    band = inner_boundary(square, 1)
    assert band.dtype == torch.bool
    assert torch.equal(band, expected)
    assert band.sum() == 16


@pytest.mark.parametrize('width, area', [(0, 0), (1, 16), (2, 24), (3, 25), (7, 25)])
def test_band_area_grows_with_width(width, area):
    # The 5 x 5 square eroded by w leaves a (5 - 2w)^2 core: 9, 1, then nothing.
    assert inner_boundary(_square(), width).sum() == area


@pytest.mark.parametrize('width', [1, 3, 20])
def test_full_image_mask_has_empty_band(width):
    assert not inner_boundary(torch.ones(5, 7, dtype=torch.bool), width).any()


def test_image_border_is_not_a_contour():
    # The mask fills columns 0 and 1 of a 4 x 4 image: only column 1 touches the contour; column 0
    # lies on the image border, which zero padding (the official API) would also count.
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:, :2] = True
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:, 1] = True
    assert torch.equal(inner_boundary(mask, 1), expected)


def test_width_w_equals_w_iterations_of_3x3_erosion():
    torch.manual_seed(0)
    masks = torch.rand(6, 11, 13) > 0.3
    eroded = masks
    for width in range(1, 5):
        eroded = eroded & ~inner_boundary(eroded, 1)  # one more 3 x 3 erosion
        assert torch.equal(inner_boundary(masks, width), masks & ~eroded)


def test_leading_dims_are_batched():
    torch.manual_seed(0)
    masks = torch.rand(2, 3, 8, 9) > 0.5
    bands = inner_boundary(masks, 2)
    assert bands.shape == (2, 3, 8, 9)
    for i in range(2):
        for j in range(3):
            assert torch.equal(bands[i, j], inner_boundary(masks[i, j], 2))


def test_negative_width_is_refused():
    with pytest.raises(ValueError, match='width'):
        inner_boundary(_square(), -1)


def test_identical_maps_give_one_and_absent_class_nan():
    label = _halves()
    intersect, union = boundary_intersect_and_union(label, label.clone(), num_classes=3, width=1)
    # Width 1: class 1's band is column 2, class 0's column 3; class 2 is nowhere.
    assert intersect.tolist() == [4, 4, 0]
    assert union.tolist() == [4, 4, 0]
    biou = class_boundary_iou(intersect, union)
    assert biou.dtype == torch.float64
    assert biou[:2].tolist() == [1.0, 1.0] and math.isnan(biou[2])
    assert torch.nanmean(biou).item() == 1.0


@pytest.mark.parametrize('width, intersect, union', [(1, [0, 0], [8, 8]), (2, [4, 4], [12, 12])])
def test_contour_shifted_by_one_column(width, intersect, union):
    # Class 1 is columns 0..2 in the label and 0..3 in the prediction of a 4 x 6 image.
    # Width 1: gt bands are columns 2 (class 1) and 3 (class 0), predicted ones 3 and 4: no overlap.
    # Width 2: class 1 has gt columns {1, 2} and predicted {2, 3}; class 0 gt {3, 4}, predicted {4, 5}.
    # Column 5 is not in class 0's gt band: the image border is not a contour.
    area_intersect, area_union = boundary_intersect_and_union(_halves(split=4), _halves(split=3), 2, width)
    assert area_intersect.tolist() == intersect
    assert area_union.tolist() == union


def test_square_shifted_by_one_pixel():
    # 9 x 9 image, class 1 is a 5 x 5 square at columns 2..6 (label) and 3..7 (prediction), width 1.
    # Class 1: the two perimeters (16 px each) share rows 2 and 6 at columns 3..6: 8 / 24.
    # Class 0: the rings of 24 px around the squares share rows 1 and 7 at columns 2..7: 12 / 36.
    label = _square(left=2).long()
    pred = _square(left=3).long()
    intersect, union = boundary_intersect_and_union(pred, label, num_classes=2, width=1)
    assert intersect.tolist() == [12, 8]
    assert union.tolist() == [36, 24]
    torch.testing.assert_close(class_boundary_iou(intersect, union),
                               torch.tensor([1 / 3, 1 / 3], dtype=torch.float64))


def _strips_next_to_ignored_column(ignore_index=255):
    # 6 x 8: class 1 in columns 0..1, class 0 in 2..6, column 7 ignored; the prediction is the label
    # with column 7 predicted as class 1.
    label = torch.zeros(6, 8, dtype=torch.long)
    label[:, :2] = 1
    label[:, 7] = ignore_index
    pred = label.clone()
    pred[:, 7] = 1
    return pred, label


def test_contours_within_width_of_ignored_pixels_are_not_judged():
    # Width 1: columns 6..7 are left out. The true contour (columns 1 | 2) matches exactly: 6 / 6 for
    # both classes. Without the exclusion, class 0's predicted band would add column 6 (6 / 12) and
    # class 1's would add column 7.
    pred, label = _strips_next_to_ignored_column()
    intersect, union = boundary_intersect_and_union(pred, label, num_classes=2, width=1)
    assert intersect.tolist() == [6, 6]
    assert union.tolist() == [6, 6]


def test_perfect_prediction_next_to_ignored_region_scores_one():
    # The label's class-0 band would run along the ignored column 7 if ignore were a class of its own.
    pred, label = _strips_next_to_ignored_column()
    pred[:, 7] = 0
    intersect, union = boundary_intersect_and_union(pred, label, num_classes=2, width=2)
    # Width 2: columns 5..7 are left out; bands are columns 0..1 (class 1) and 2..3 (class 0).
    assert intersect.tolist() == [12, 12]
    assert union.tolist() == [12, 12]


def test_custom_ignore_index():
    pred, label = _strips_next_to_ignored_column(ignore_index=7)
    intersect, union = boundary_intersect_and_union(pred, label, 2, 1, ignore_index=7)
    assert intersect.tolist() == [6, 6]
    assert union.tolist() == [6, 6]


def test_class_biou_sums_before_dividing():
    # Per-class totals over images: 4 / 4 and 0 / 8 give 4 / 12, not the mean 1 / 2 of the ratios.
    intersect = torch.tensor([4, 0]) + torch.tensor([0, 0])
    union = torch.tensor([4, 0]) + torch.tensor([8, 0])
    biou = class_boundary_iou(intersect, union)
    assert biou[0].item() == pytest.approx(1 / 3)
    assert math.isnan(biou[1])


def test_boundary_iou_class_absent_from_both_is_left_out_of_the_mean():
    label = torch.zeros(12, 12, dtype=torch.long)
    label[3:9, 3:9] = 1
    intersect, union = boundary_intersect_and_union(label, label, num_classes=3, width=1)
    biou = class_boundary_iou(intersect, union)
    assert union[2] == 0 and biou[2].isnan()  # class 2 appears nowhere: no score, not a zero
    assert torch.nanmean(biou).item() == 1.0


def test_boundary_iou_of_all_ignored_pixels_judges_nothing():
    pred = torch.randint(0, 3, (10, 10))
    intersect, union = boundary_intersect_and_union(pred, torch.full((10, 10), 255), 3, width=2)
    assert intersect.sum() == 0 and union.sum() == 0


def test_boundary_band_wider_than_the_image():
    label = torch.zeros(4, 5, dtype=torch.long)
    label[1:3, 1:4] = 1
    intersect, union = boundary_intersect_and_union(label.flip(1), label, num_classes=2, width=9)
    biou = class_boundary_iou(intersect, union)
    assert ((biou >= 0) & (biou <= 1)).all()
