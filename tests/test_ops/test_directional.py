"""DLDE directional classification against closed forms (the formulas: docs/dlde.md)."""
import math

import pytest
import torch

from mmext.ops.directional import (class_embedding_sums, ema_update_means, means_from_sums,
                                   modified_sigmoid, modified_sigmoid_logit, unit_embeddings)

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
