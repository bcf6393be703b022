"""Net2VecLoss as an mmseg loss: closed forms, ignore_index, 'auto' weighting, use in a decode head, bad
input (labels and logits that do not match, all-ignore labels)."""
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


def test_binary_head_label_maps_probe_label_one():
    # mmseg's binary convention (out_channels=1): the channel is class 1, not class 0.
    labels = torch.tensor([[[1, 0], [0, 255]]])
    logits = torch.full((1, 1, 2, 2), 30.0)  # o = 1 everywhere
    # b = 1 - 1/3; labelled pixels: one positive (b * 1), two negatives ((1 - b) * (1 - 1) = 0).
    loss = Net2VecLoss(normalize_area=False)(logits, labels)
    assert loss.item() == pytest.approx(-2 / 3, abs=1e-6)


def test_concept_masks_as_float_targets_with_weights_and_threshold():
    # Soft targets > target_thresh (0.5) are positive; weight 0 leaves an element out.
    targets = torch.tensor([[[[0.9, 0.5], [0.1, 0.7]], [[0.0, 0.6], [1.0, 0.2]]]])  # (1, 2, 2, 2)
    weight = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    logits = torch.zeros(1, 2, 2, 2)  # o = 0.5
    loss = Net2VecLoss(factor_pos_class=0.25, normalize_area=False)(logits, targets, weight=weight)
    # Channel 0: positives {0.9}, negatives {0.5, 0.1}; channel 1: positives {0.6, 1.0}, negatives {0, 0.2}.
    per_channel = [-(0.25 * 0.5 + 0.75 * 2 * 0.5), -(0.25 * 2 * 0.5 + 0.75 * 2 * 0.5)]
    assert loss.item() == pytest.approx(sum(per_channel) / 2)
    # One concept: (N, H, W) float targets pair with (N, 1, H, W) logits, like mmseg's binary losses.
    one = Net2VecLoss(factor_pos_class=0.25, normalize_area=False)(logits[:, :1], targets[:, 0],
                                                                    weight=weight[:, 0])
    assert one.item() == pytest.approx(per_channel[0])


def test_float_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match='do not match the logits'):
        Net2VecLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))


def test_auto_weighting_counts_every_batch_seen_in_training():
    # Batch 1 has one pixel of each class; batch 2 only class 0. Counted over both (training), class 1
    # is 1 of 4 labelled pixels: b = (0.25, 0.75), and o = 0.5 gives -(0.25 * 2 * 0.5) per channel.
    # Over batch 2 alone (eval mode), b = (0, 1): every term is weighted 0, and class 1's false
    # positives would cost nothing.
    loss = Net2VecLoss(normalize_area=False)
    loss(torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 1]]]))
    second = torch.tensor([[[0, 0]]])
    assert loss(torch.zeros(1, 2, 1, 2), second).item() == pytest.approx(-0.25)
    assert loss.seen_labelled.tolist() == [4, 4] and 'seen_labelled' not in loss.state_dict()
    assert loss.eval()(torch.zeros(1, 2, 1, 2), second).item() == 0.0


# -- bad input ----------------------------------------------------------------------------------------

def _net2vec_label_size_differs():
    Net2VecLoss()(torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 4, dtype=torch.long))


def _net2vec_logits_without_class_axis():
    Net2VecLoss()(torch.randn(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))


CHANNEL_CASES = [
    (_net2vec_label_size_differs, ValueError, r'(?i)shape'),
    (_net2vec_logits_without_class_axis, ValueError, r'(?i)\(N, C, H, W\)|4-D|dims'),
]


@pytest.mark.parametrize('case, error, match',
                         [pytest.param(*case, id=case[0].__name__.strip('_')) for case in CHANNEL_CASES])
def test_channel_mismatch(case, error, match):
    with pytest.raises(error, match=match):
        case()


@pytest.mark.parametrize('factor_pos_class', ['auto', 0.5])
def test_net2vec_all_ignore_labels_give_zero_loss_and_zero_gradient(factor_pos_class):
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = Net2VecLoss(factor_pos_class=factor_pos_class)(logits, torch.full((2, 4, 4), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_net2vec_partly_ignored_equals_the_labelled_pixels_alone():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 4, 4)
    label = torch.randint(0, 2, (1, 4, 4))
    masked = label.clone()
    masked[:, 2:] = 255
    loss = Net2VecLoss(factor_pos_class=0.5)
    torch.testing.assert_close(loss(logits, masked), loss(logits[..., :2, :], label[:, :2]))
