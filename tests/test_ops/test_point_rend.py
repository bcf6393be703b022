"""PointRend point primitives against closed forms (the method: docs/point_rend.md)."""
import pytest
import torch

from mmext.ops.point_rend import (grid_indices_to_coords, point_labels, point_sample, point_uncertainty,
                                  scatter_point_logits, training_point_counts,
                                  uncertain_point_coords_with_randomness,
                                  uncertain_point_indices_on_grid)


def test_uncertainty_is_second_minus_first_logit():
    logits = torch.tensor([3.0, 1.0, -2.0]).view(1, 3, 1)
    assert point_uncertainty(logits).tolist() == [[[-2.0]]]


def test_uncertainty_of_a_tie_is_zero_and_never_positive():
    assert point_uncertainty(torch.tensor([2.0, 2.0, 0.0]).view(1, 3, 1)).item() == 0.0
    u = point_uncertainty(torch.randn(2, 5, 7, 9))
    assert u.shape == (2, 1, 7, 9) and (u <= 0).all()


def test_uncertainty_of_a_single_sigmoid_logit():
    assert point_uncertainty(torch.tensor([-1.5, 0.0, 2.0]).view(1, 1, 3)).tolist() == [[[-1.5, 0.0, -2.0]]]


def test_uncertainty_is_measured_after_interpolation():
    # A 1 x 2 map: pixel 0 has logits (+1, -1), pixel 1 has (-1, +1); both are -2 uncertain, but the
    # logits sampled midway are (0, 0), a tie: uncertainty 0. Interpolating the uncertainties gives -2.
    logits = torch.tensor([[[[1.0, -1.0]], [[-1.0, 1.0]]]])  # (1, 2, 1, 2)
    mid = torch.tensor([[[0.5, 0.5]]])
    sampled = point_sample(logits, mid)
    torch.testing.assert_close(sampled, torch.zeros(1, 2, 1))
    assert point_uncertainty(sampled).item() == 0.0
    assert point_sample(point_uncertainty(logits), mid).item() == -2.0


def test_pixel_centre_coords_reproduce_grid_values():
    feats = torch.randn(2, 3, 5, 7)
    indices = torch.arange(35).expand(2, 35)
    coords = grid_indices_to_coords(indices, 5, 7)
    # index 9 is row 1, column 2: ((2 + .5) / 7, (1 + .5) / 5)
    torch.testing.assert_close(coords[0, 9], torch.tensor([2.5 / 7, 1.5 / 5]))
    torch.testing.assert_close(point_sample(feats, coords), feats.flatten(2), rtol=0, atol=1e-6)


def test_mmseg_rounded_pixel_centres():
    # 0.5 / W + c * fp32(1 / W): within one fp32 rounding of (c + 0.5) / W, and different in the last
    # bit for 22 of the 45 columns of a 45-wide map (mmseg's PointHead rounds this way).
    indices = torch.arange(45).unsqueeze(0)
    exact = grid_indices_to_coords(indices, 1, 45)
    mmseg = grid_indices_to_coords(indices, 1, 45, mmseg_rounding=True)
    assert (mmseg != exact).any(dim=2).sum().item() == 22
    assert ((mmseg - exact).abs() <= torch.finfo(torch.float32).eps).all()
    corners = grid_indices_to_coords(indices, 1, 45, align_corners=True)
    assert torch.equal(grid_indices_to_coords(indices, 1, 45, True, mmseg_rounding=True), corners)


def test_pixel_centre_coords_with_align_corners():
    feats = torch.randn(1, 2, 4, 6)
    coords = grid_indices_to_coords(torch.arange(24).unsqueeze(0), 4, 6, align_corners=True)
    torch.testing.assert_close(coords[0, 9], torch.tensor([3 / 5, 1 / 3]))  # row 1, column 3
    torch.testing.assert_close(point_sample(feats, coords, align_corners=True), feats.flatten(2),
                               rtol=0, atol=1e-6)


def test_low_precision_features_are_sampled_at_full_precision_coords():
    # bf16 coords near x = 1 are 2^-8 apart, 8 pixels of a 2048-wide map; fp32 coords hit every pixel.
    feats = torch.arange(2048.0).view(1, 1, 1, 2048).to(torch.bfloat16)
    coords = grid_indices_to_coords(torch.arange(2040, 2048).unsqueeze(0), 1, 2048)
    sampled = point_sample(feats, coords)
    assert sampled.dtype == torch.float32
    assert sampled.tolist() == [[feats[0, 0, 0, 2040:].float().tolist()]]


def test_training_point_counts():
    assert training_point_counts(2048, 3, 0.75) == (6144, 1536, 512)
    assert training_point_counts(2048, 3, 1.0) == (6144, 2048, 0)
    assert training_point_counts(2048, 3, 0.0) == (6144, 0, 2048)


@pytest.mark.parametrize('kwargs, match', [
    (dict(oversample_ratio=0.5), 'oversample_ratio'),
    (dict(importance_sample_ratio=1.5), 'importance_sample_ratio'),
    (dict(importance_sample_ratio=-0.1), 'importance_sample_ratio'),
    (dict(num_points=0), 'num_points'),
])
def test_training_selection_refuses_bad_ratios(kwargs, match):
    with pytest.raises(ValueError, match=match):
        uncertain_point_coords_with_randomness(torch.randn(1, 3, 4, 4), **kwargs)


def _ramp_logits(width=16):
    """(1, 2, 4, W) logits that cross at x = 0.5: class 0 is 10 (0.5 - x), class 1 its negative."""
    x = (torch.arange(width) + 0.5) / width
    ramp = (10 * (0.5 - x)).expand(4, width)
    return torch.stack([ramp, -ramp]).unsqueeze(0)


def test_training_selection_keeps_the_most_uncertain_candidates():
    torch.manual_seed(0)
    candidates = torch.rand(1, 3 * 64, 2)  # the function draws its candidates first
    torch.manual_seed(0)
    coords = uncertain_point_coords_with_randomness(_ramp_logits(), 64, 3, 1.0)
    assert coords.shape == (1, 64, 2)
    # Ranked by the uncertainty of the logits sampled at the candidates (zero padding included).
    scores = point_uncertainty(point_sample(_ramp_logits(), candidates))[0, 0]
    expected = candidates[0, scores.argsort(descending=True)[:64]]
    torch.testing.assert_close(coords[0], expected)


def test_training_selection_appends_fresh_uniform_points():
    torch.manual_seed(0)
    candidates = torch.rand(2, 3 * 2048, 2)
    fresh = torch.rand(2, 512, 2)
    torch.manual_seed(0)
    coords = uncertain_point_coords_with_randomness(_ramp_logits().expand(2, -1, -1, -1), 2048)
    assert coords.shape == (2, 2048, 2)
    assert ((coords >= 0) & (coords < 1)).all()
    torch.testing.assert_close(coords[:, 1536:], fresh)  # fresh, not the least uncertain candidates
    scores = point_uncertainty(point_sample(_ramp_logits().expand(2, -1, -1, -1), candidates))[:, 0]
    expected = candidates.gather(1, scores.topk(1536, dim=1).indices.unsqueeze(2).expand(-1, -1, 2))
    torch.testing.assert_close(coords[:, :1536], expected)


def test_grid_selection_takes_the_most_uncertain_pixels():
    # Two classes, class 1 constant 0: the uncertainty of a pixel is -|class-0 logit|.
    logit0 = torch.tensor([[4.0, -0.5, 3.0], [0.25, -2.0, 1.0]])
    logits = torch.stack([logit0, torch.zeros(2, 3)]).unsqueeze(0)
    indices, coords = uncertain_point_indices_on_grid(logits, num_points=3)
    assert indices.tolist() == [[3, 1, 5]]  # |0.25| < |-0.5| < |1.0|
    torch.testing.assert_close(coords, torch.tensor([[[0.5 / 3, 0.75], [1.5 / 3, 0.25], [2.5 / 3, 0.75]]]))


def test_grid_selection_is_capped_at_the_number_of_pixels():
    indices, coords = uncertain_point_indices_on_grid(torch.randn(2, 3, 4, 5), num_points=8192)
    assert indices.shape == (2, 20) and coords.shape == (2, 20, 2)
    assert sorted(indices[0].tolist()) == list(range(20))


def test_scatter_replaces_only_the_given_pixels():
    logits = torch.randn(2, 3, 4, 5)
    before = logits.clone()
    indices = torch.tensor([[0, 7], [19, 3]])
    point_logits = torch.randn(2, 3, 2)
    out = scatter_point_logits(logits, indices, point_logits)
    torch.testing.assert_close(logits, before)  # not modified in place
    flat, expected = out.flatten(2), before.flatten(2).clone()
    for b in range(2):
        expected[b, :, indices[b]] = point_logits[b]
    torch.testing.assert_close(flat, expected, rtol=0, atol=0)


def test_point_labels_keep_ignore_index():
    label = torch.tensor([[[0, 255], [3, 1]]])  # (1, 2, 2)
    centres = grid_indices_to_coords(torch.arange(4).unsqueeze(0), 2, 2)
    assert point_labels(label, centres).tolist() == [[0, 255, 3, 1]]
    near_top_right = torch.tensor([[[0.9, 0.1], [0.6, 0.45]]])
    assert point_labels(label.unsqueeze(1), near_top_right).tolist() == [[255, 255]]



def test_scatter_in_place_writes_into_the_given_map():
    logits, indices = torch.randn(2, 3, 4, 5), torch.tensor([[0, 7, 19], [3, 4, 5]])
    point_logits = torch.randn(2, 3, 3)
    expected = scatter_point_logits(logits, indices, point_logits)
    out = scatter_point_logits(logits, indices, point_logits, inplace=True)
    assert out.data_ptr() == logits.data_ptr()  # no copy of the map
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize('num_points', [5, 12, 40])  # fewer, as many as and more than the 3 x 4 pixels
def test_padded_grid_selection_picks_the_same_pixels_and_scatter_drops_the_padding(num_points):
    logits, point_logits = torch.randn(2, 3, 3, 4), torch.randn(2, 3, num_points)
    indices, coords = uncertain_point_indices_on_grid(logits, num_points)
    padded, padded_coords = uncertain_point_indices_on_grid(logits, num_points, pad_to_num_points=True)
    real = min(12, num_points)
    assert padded.shape == (2, num_points) and (padded[:, real:] >= 12).all()
    assert torch.equal(padded[:, :real].sort(1).values, indices.sort(1).values)
    assert (padded_coords[:, real:, 1] > 1).all()  # below the map: point_sample reads zeros there
    expected = scatter_point_logits(logits, padded[:, :real], point_logits[:, :, :real])
    assert torch.equal(scatter_point_logits(logits, padded, point_logits, num_padding=num_points), expected)


def test_pixel_coords_of_flat_indices_without_a_remainder():
    indices = torch.arange(35).view(1, 35)
    coords = grid_indices_to_coords(indices, 5, 7)
    assert torch.equal(coords[0, :, 0], (torch.arange(35) % 7 + 0.5) / 7)
    assert torch.equal(coords[0, :, 1], (torch.arange(35) // 7 + 0.5) / 5)
