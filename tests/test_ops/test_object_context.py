"""Closed-form checks of the OCR math (mmext.ops.object_context)."""
import math

import pytest
import torch

from mmext.ops import object_context, pixel_region_relation, soft_object_regions, spatial_gather


def test_gather_hand_computed():
    # Two pixels with features 1 and 3 and one region with logits (0, ln 3): weights (1/4, 3/4).
    feats = torch.tensor([1.0, 3.0]).view(1, 1, 1, 2)
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    assert spatial_gather(feats, logits).item() == pytest.approx(0.25 * 1 + 0.75 * 3)


@pytest.mark.parametrize('scale', [1.0, 0.5, 3.0])
def test_constant_logits_give_spatial_mean(scale):
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 7, 9)
    logits = torch.full((2, 4, 7, 9), 0.3)
    region_feats = spatial_gather(feats, logits, scale)
    assert region_feats.shape == (2, 5, 4, 1)
    mean = feats.mean(dim=(2, 3))
    # The mean, not (HW/K) * mean as a softmax over the class axis would give.
    for k in range(4):
        torch.testing.assert_close(region_feats[:, :, k, 0], mean)


def test_indicator_logits_give_region_means():
    torch.manual_seed(0)
    feats = torch.randn(1, 3, 4, 6)
    labels = torch.randint(0, 3, (4, 6))
    labels[0, :3] = torch.tensor([0, 1, 2])  # every region non-empty
    logits = 50.0 * torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1)[None].float()
    region_feats = spatial_gather(feats, logits)
    for k in range(3):
        expected = feats[0][:, labels == k].mean(dim=1)
        torch.testing.assert_close(region_feats[0, :, k, 0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('scale', [0.25, 2.0, 7.0])
def test_temperature_equivalence(scale):
    torch.manual_seed(0)
    feats, logits = torch.randn(2, 4, 5, 5), torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(spatial_gather(feats, logits, scale),
                               spatial_gather(feats, scale * logits, 1.0))


def test_weights_are_normalized():
    torch.manual_seed(0)
    regions = soft_object_regions(torch.randn(2, 3, 6, 5) * 10, scale=2.0)
    torch.testing.assert_close(regions.sum(dim=2), torch.ones(2, 3))
    relation = pixel_region_relation(torch.randn(2, 8, 6, 5) * 5, torch.randn(2, 8, 3, 1) * 5)
    assert relation.shape == (2, 30, 3)
    torch.testing.assert_close(relation.sum(dim=2), torch.ones(2, 30))


def test_relation_scaled_by_inverse_sqrt_key_channels():
    # One pixel, two regions, Ck = 4: relation = softmax(q.k / 2), computed by hand.
    query = torch.tensor([1.0, 2.0, 0.0, -1.0]).view(1, 4, 1, 1)
    key = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 0.0], [0.0, 2.0]]).view(1, 4, 2, 1)
    dots = [1 + 2 + 0 + 0, 0 + 2 + 0 - 2]  # 3 and 0
    e = [math.exp(d / 2.0) for d in dots]
    expected = torch.tensor([e[0] / sum(e), e[1] / sum(e)])
    torch.testing.assert_close(pixel_region_relation(query, key)[0, 0], expected)
    # Without the factor (rosinality's variant) the weights would differ.
    assert not torch.allclose(expected, torch.softmax(torch.tensor(dots, dtype=torch.float), 0))


def test_single_region_gives_identical_context_everywhere():
    torch.manual_seed(0)
    query, key, value = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 1, 1), torch.randn(2, 3, 1, 1)
    torch.testing.assert_close(pixel_region_relation(query, key), torch.ones(2, 30, 1))
    context = object_context(query, key, value)
    assert context.shape == (2, 3, 5, 6)
    torch.testing.assert_close(context, value.expand(2, 3, 5, 6))


def test_object_context_is_relation_weighted_sum():
    torch.manual_seed(0)
    query, key, value = torch.randn(1, 4, 2, 3), torch.randn(1, 4, 3, 1), torch.randn(1, 5, 3, 1)
    relation = pixel_region_relation(query, key)[0]  # (N, K)
    context = object_context(query, key, value)[0].flatten(1)  # (Cv, N)
    for n in range(6):
        expected = sum(relation[n, k] * value[0, :, k, 0] for k in range(3))
        torch.testing.assert_close(context[:, n], expected)
