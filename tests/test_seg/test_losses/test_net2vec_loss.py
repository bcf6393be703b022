"""Net2VecLoss as an mmseg loss: closed forms, ignore_index, 'auto' weighting, use in a decode head."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.structures import SegDataSample

from mmext.seg.losses import Net2VecLoss


def test_confident_correct_logits_give_minus_half_per_pixel_with_b_half():
    labels = torch.tensor([[[0, 1], [2, 1]]])
    logits = 30 * (2 * torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float() - 1)
    loss = Net2VecLoss(factor_pos_class=0.5)(logits, labels)
    assert loss.item() == pytest.approx(-0.5, abs=1e-6)


def test_auto_weighting_closed_form():
    # Labels (0, 0, 0, 1): b = 1 - 3/4 for class 0 and 1 - 1/4 for class 1; logits 0 give o = 0.5:
    # class 0: -(0.25 * 3 * 0.5 + 0.75 * 1 * 0.5) / 4, class 1 the same by symmetry.
    labels = torch.tensor([[[0, 0], [0, 1]]])
    loss = Net2VecLoss()(torch.zeros(1, 2, 2, 2), labels)
    assert loss.item() == pytest.approx(-0.1875)


def test_ignored_pixels_leave_both_terms():
    labels = torch.tensor([[[0, 1, 255], [1, 0, 255]]])
    logits = torch.randn(1, 2, 2, 3)
    loss = Net2VecLoss(factor_pos_class=0.3)(logits, labels)
    changed = logits.clone()
    changed[..., 2] = 100.0
    assert Net2VecLoss(factor_pos_class=0.3)(changed, labels).item() == pytest.approx(loss.item())
    cropped = Net2VecLoss(factor_pos_class=0.3)(logits[..., :2], labels[..., :2])
    assert loss.item() == pytest.approx(cropped.item())


def test_area_normalization_and_loss_weight():
    labels = torch.randint(0, 3, (2, 5, 4))
    logits = torch.randn(2, 3, 5, 4)
    normalized = Net2VecLoss(factor_pos_class=0.5)(logits, labels)
    summed = Net2VecLoss(factor_pos_class=0.5, normalize_area=False, loss_weight=2.0)(logits, labels)
    assert summed.item() == pytest.approx(2.0 * 20 * normalized.item(), rel=1e-5)


def test_as_loss_decode_of_a_decode_head():
    head = FCNHead(in_channels=4, channels=4, num_classes=3, num_convs=1,
                   loss_decode=dict(type='Net2VecLoss'))
    samples = [SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 3, (1, 8, 8))))]
    losses = head.loss_by_feat(torch.randn(1, 3, 8, 8, requires_grad=True), samples)
    assert set(losses) == {'loss_net2vec', 'acc_seg'} and losses['loss_net2vec'].item() < 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(factor_pos_class=1.5), 'factor_pos_class'), (dict(factor_pos_class='paper'), 'factor_pos_class'),
    (dict(loss_name='net2vec'), "start with 'loss_'")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Net2VecLoss(**kwargs)
