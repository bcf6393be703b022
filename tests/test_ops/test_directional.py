"""DLDE directional classification against closed forms (the formulas: docs/dlde.md)."""
import math

import pytest
import torch

from mmext.ops.directional import (anchor_embedding_norms, class_embedding_sums, cosine_map_to_means,
                                   cosine_to_means, ema_update_means, gather_unit_embeddings,
                                   means_from_sums, modified_sigmoid, modified_sigmoid_logit,
                                   unit_embeddings)

W0, B0 = torch.tensor([7.0]), torch.tensor([-0.5])


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize('s, expected', [
    (1.0, 1.0), (0.5, 0.515099), (0.0, 0.030197), (-0.5, 9.386e-4), (-1.0, 2.837e-5)])
def test_modified_sigmoid_at_initial_weight_and_bias(s, expected):
    p = modified_sigmoid(torch.tensor([[s]]), W0, B0).item()
    assert p == pytest.approx(_sigmoid(7 * (s - 0.5)) / _sigmoid(3.5), rel=1e-5)
    assert p == pytest.approx(expected, rel=1e-3)


def test_zero_means_give_sigmoid_ratio_everywhere():
    emb = unit_embeddings(torch.randn(10, 8))
    p = modified_sigmoid(emb @ torch.zeros(3, 8).t(), W0.expand(3), B0.expand(3))
    torch.testing.assert_close(p, torch.full((10, 3), _sigmoid(-3.5) / _sigmoid(3.5)))
    assert p[0, 0].item() == pytest.approx(0.0302, abs=5e-5)


def test_logit_inverts_to_the_probability_and_is_clamped():
    s = torch.linspace(-1, 1, 21).unsqueeze(1)
    p = modified_sigmoid(s, W0, B0).clamp(1e-5, 1 - 1e-5)
    torch.testing.assert_close(torch.sigmoid(modified_sigmoid_logit(s, W0, B0)), p)
    assert torch.isfinite(modified_sigmoid_logit(s, torch.tensor([-7.0]), B0)).all()  # p > 1 for w < 0


def test_unit_embeddings_of_zero_are_zero_not_nan():
    emb = unit_embeddings(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    torch.testing.assert_close(emb, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


def test_class_sums_skip_background_and_ignored_labels():
    emb = torch.eye(4)
    labels = torch.tensor([0, 2, 0, 3])  # 3 = background for 3 classes
    sums = class_embedding_sums(emb, labels, num_classes=3)
    assert sums.tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
    assert class_embedding_sums(emb, torch.tensor([-1, 3, 5, 3]), 3).abs().sum() == 0


def test_ema_from_zero_equals_the_first_normalized_sum():
    sums = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    means = ema_update_means(torch.zeros(2, 2), sums, lr=0.1)
    assert means.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)], [0.0, 0.0]]


def test_second_orthogonal_update_is_analytic():
    # m = e1, new direction e2: normalize(0.9 e1 + 0.1 e2) = (0.9, 0.1) / sqrt(0.82).
    means = ema_update_means(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]]), lr=0.1)
    torch.testing.assert_close(means, torch.tensor([[0.9, 0.1]]) / math.sqrt(0.82))


def test_unseen_class_keeps_its_mean():
    old = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sums = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
    assert ema_update_means(old, sums, 1.0).tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert means_from_sums(old, sums).tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert torch.isfinite(means_from_sums(torch.zeros(2, 2), torch.zeros(2, 2))).all()


def _embedding_map(dtype=torch.float64):
    """(2, A*E, 3, 4) embeddings, A = 3 anchors of E = 5, anchor 1 of image 0 at (0, 0) zero."""
    embedding_map = torch.randn(2, 3 * 5, 3, 4, dtype=dtype, generator=torch.Generator().manual_seed(0))
    embedding_map[0, 5:10, 0, 0] = 0
    return embedding_map


def _anchor_order(embedding_map):
    """(B, A*E, H, W) -> (B*H*W*A, E), mmdet's flat anchor order, written out."""
    return embedding_map.permute(0, 2, 3, 1).reshape(-1, 5)


def test_cosine_map_equals_unit_embeddings_times_means_in_retinas_layout():
    embedding_map, means = _embedding_map(), unit_embeddings(torch.randn(4, 5, dtype=torch.float64))
    cos_map = cosine_map_to_means(embedding_map, anchor_embedding_norms(embedding_map, 5), means)
    expected = cosine_to_means(unit_embeddings(_anchor_order(embedding_map)), means)  # (B*H*W*A, C)
    assert cos_map.shape == (2, 3 * 4, 3, 4)
    torch.testing.assert_close(cos_map.permute(0, 2, 3, 1).reshape(-1, 4), expected)
    assert cos_map[0, 4:8, 0, 0].abs().max() == 0  # the zero embedding: 0, not NaN


def test_cosine_map_backward_is_the_derivative_of_the_unit_embeddings_path():
    # Its own backward (one E-sized tensor) against autograd through unit_embeddings and the matmul,
    # the zero (clamped) embedding included; and torch's numerical gradcheck.
    embedding_map, means = _embedding_map(), unit_embeddings(torch.randn(4, 5, dtype=torch.float64))
    weights = torch.randn(2 * 3 * 4 * 3 * 4, dtype=torch.float64)
    ours, reference = embedding_map.clone().requires_grad_(), embedding_map.clone().requires_grad_()
    cos_map = cosine_map_to_means(ours, anchor_embedding_norms(ours, 5).detach(), means)
    (cos_map.permute(0, 2, 3, 1).flatten() * weights).sum().backward()
    (cosine_to_means(unit_embeddings(_anchor_order(reference)), means).flatten() * weights).sum().backward()
    torch.testing.assert_close(ours.grad, reference.grad)
    nonzero = embedding_map.clone()
    nonzero[0, 5:10, 0, 0] = 0.3
    assert torch.autograd.gradcheck(
        lambda x: cosine_map_to_means(x, anchor_embedding_norms(x, 5), means), nonzero.requires_grad_())


def test_gathered_unit_embeddings_are_those_of_the_anchor_order():
    embedding_map = _embedding_map()
    index = torch.tensor([0, 1, 7, 35, 36, 71])  # (image 0, anchor 1 at (0, 0)) is the zero embedding
    got = gather_unit_embeddings(embedding_map, anchor_embedding_norms(embedding_map, 5), index)
    torch.testing.assert_close(got, unit_embeddings(_anchor_order(embedding_map))[index])
    assert got[1].abs().max() == 0
