"""The Net2Vec loss against closed forms (the formula: docs/net2vec.md)."""
import pytest
import torch

from mmext.ops.net2vec import area_axes, net2vec_loss


def test_area_axes():
    assert [area_axes(n) for n in (1, 2, 3, 4)] == [(0,), (1, 0), (2, 1), (3, 2)]


def _target():
    t = torch.zeros(2, 3, 4, 5)
    t[:, :, 1:3, 1:4] = 1  # 6 positive and 14 negative pixels per instance
    return t


def test_perfect_output():
    t = _target()
    loss = net2vec_loss(t, t, factor_pos_class=0.3, reduction='none')
    torch.testing.assert_close(loss, torch.full((2, 3), -(0.3 * 6 + 0.7 * 14)))


def test_inverted_output_scores_zero():
    t = _target()
    assert net2vec_loss(1 - t, t, 0.3, reduction='sum').item() == 0.0


def test_constant_half_output():
    t = _target()
    loss = net2vec_loss(torch.full_like(t, 0.5), t, 0.3)
    assert loss.item() == pytest.approx(-(0.3 * 6 * 0.5 + 0.7 * 14 * 0.5))


def test_target_threshold_is_strict():
    o = torch.full((1, 2, 2), 0.25)
    t = torch.tensor([[[0.5, 0.5], [0.2, 0.6]]])
    # thresh 0.5: only 0.6 is positive -> -(0.5 * 0.25 + 0.5 * 3 * 0.75)
    assert net2vec_loss(o, t, target_thresh=0.5).item() == pytest.approx(-(0.125 + 1.125))


def test_reductions():
    t, o = _target(), torch.rand(2, 3, 4, 5)
    per = net2vec_loss(o, t, reduction='none')
    assert per.shape == (2, 3)
    torch.testing.assert_close(net2vec_loss(o, t), per.mean())
    torch.testing.assert_close(net2vec_loss(o, t, reduction='sum'), per.sum())
    torch.testing.assert_close(net2vec_loss(o, t, reduction=torch.amax), per.max())
    assert net2vec_loss(torch.rand(5), torch.ones(5), reduction='none').dim() == 0  # 1-D: one area


def test_gradient_is_minus_b_on_positives_and_one_minus_b_on_negatives():
    t = _target()
    o = torch.rand_like(t, requires_grad=True)
    net2vec_loss(o, t, factor_pos_class=0.2, reduction='sum').backward()
    torch.testing.assert_close(o.grad, torch.where(t > 0, -0.2, 0.8))


@pytest.mark.parametrize('kwargs, match', [
    (dict(factor_pos_class=1.5), 'factor_pos_class'), (dict(factor_pos_class=-0.1), 'factor_pos_class'),
    (dict(reduction='max'), 'reduction')])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        net2vec_loss(torch.rand(2, 3, 3), torch.rand(2, 3, 3), **kwargs)


def test_weights_and_per_class_factors():
    o, t = torch.full((1, 2, 1, 2), 0.5), torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]]]])
    b = torch.tensor([0.2, 0.6]).view(1, 2, 1, 1)
    per = net2vec_loss(o, t, b, reduction='none', weight=torch.tensor([1.0, 0.0]))
    # Only the first pixel (positive) counts: -b * 0.5 per class.
    torch.testing.assert_close(per, torch.tensor([[-0.1, -0.3]]))
