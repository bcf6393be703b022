"""Net2VecHead: the 1x1 probe, its IoU-encoded targets, its loss and its decoded prediction, against
the pure ops and hand-computed values."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.losses import CrossEntropyLoss
from mmseg.structures import SegDataSample

from mmext.ops import intersect_decode, iou_encode
from mmext.seg.heads import Net2VecHead
from mmext.seg.heads.net2vec_head import encoded_concept_targets
from mmext.seg.losses import Net2VecLoss
from mmext.testing.precision import autocast_deviation


def _head(**kwargs):
    args = dict(in_channels=4, num_classes=2, out_channels=1, encoding=dict(kernel_size=3))
    return Net2VecHead(**{**args, **kwargs})


def _samples(labels):
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]


def test_targets_of_one_concept_pixel_with_a_1x1_proto():
    labels = torch.zeros(1, 3, 4, dtype=torch.long)
    labels[0, 1, 2] = 1
    labels[0, 0, 0] = 255
    targets, weight = encoded_concept_targets(labels, 1, 255, dict(kernel_size=1))
    eps = 1e-7  # IoU of the pixel with itself is 1; elsewhere I = 0 and the union is |M| + 1 = 2
    expected = torch.full((1, 1, 3, 4), eps / (2 + eps))
    expected[0, 0, 1, 2] = 1.0
    torch.testing.assert_close(targets, expected)
    assert weight[0, 0, 0, 0] == 0 and weight.sum() == 11


def test_targets_one_channel_per_class_and_raw_masks():
    labels = torch.tensor([[[0, 1, 2], [2, 255, 1]]])
    targets, weight = encoded_concept_targets(labels, 3, 255, None)
    assert targets[0, :, 0].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert targets[0, :, 1, 1].tolist() == [0, 0, 0] and weight[0, :, 1, 1].tolist() == [0, 0, 0]


def test_forward_is_a_1x1_convolution_of_the_chosen_level():
    head = _head(in_index=1)
    feats = [torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5)]
    expected = F.conv2d(feats[1], head.conv_seg.weight, head.conv_seg.bias)
    torch.testing.assert_close(head(feats), expected)


def test_loss_is_net2vec_on_upsampled_logits_and_iou_targets():
    torch.manual_seed(0)
    head = _head()
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[0, 2:5, 1:4] = 1
    labels[1, 5:, 5:] = 1
    logits = torch.randn(2, 1, 4, 4)
    losses = head.loss_by_feat(logits, _samples(labels))
    upsampled = F.interpolate(logits, size=(8, 8), mode='bilinear', align_corners=False)
    targets = iou_encode(labels[:, None].float(), kernel_size=3)
    expected = Net2VecLoss()(upsampled, targets[:, 0])
    assert set(losses) == {'loss_net2vec'}
    assert losses['loss_net2vec'].item() == pytest.approx(expected.item(), rel=1e-6)
    # The image 0 square centre hits IoU 9 / 9: above Net2VecLoss's 0.5, so it is a positive.
    assert targets[0, 0, 3, 2] == pytest.approx(1.0)


def test_bce_loss_from_mmseg_on_soft_iou_targets():
    head = _head(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_name='loss_bce'))
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[0, 1:4, 1:4] = 1
    logits = torch.randn(1, 1, 6, 6)
    loss = head.loss_by_feat(logits, _samples(labels))['loss_bce']
    targets = iou_encode(labels[:, None].float(), kernel_size=3)
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    assert isinstance(head.loss_decode, CrossEntropyLoss)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_prediction_decodes_the_probe_output():
    head = _head()
    logits = torch.full((1, 1, 7, 7), -30.0)
    logits[0, 0, 3, 3] = 30.0  # the probe fires at one pixel: the decoder paints one 3 x 3 box
    pred = head.predict_by_feat(logits, [dict(img_shape=(7, 7))]).sigmoid()
    expected = torch.zeros(7, 7)
    expected[2:5, 2:5] = 1 / 9
    torch.testing.assert_close(pred[0, 0], expected, atol=1e-6, rtol=0)
    random = torch.randn(1, 1, 7, 7)
    decoded = intersect_decode(random.sigmoid(), kernel_size=3)
    torch.testing.assert_close(head.predict_by_feat(random, [dict(img_shape=(7, 7))]).sigmoid(), decoded,
                               atol=1e-6, rtol=1e-5)


def test_raw_probe_prediction_is_the_upsampled_sigmoid():
    head = _head(encoding=None)
    logits = torch.randn(1, 1, 4, 4)
    pred = head.predict_by_feat(logits, [dict(img_shape=(8, 8))])
    upsampled = F.interpolate(logits, size=(8, 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(pred, upsampled, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('kwargs, match', [
    (dict(channels=8), 'do not set channels'),
    (dict(dropout_ratio=0.1), 'do not set dropout_ratio'),
    (dict(in_channels=[4, 8]), 'in_channels must be an int'),
    (dict(encoding=dict(kernel=3)), 'unknown encoding keys'),
    (dict(encoding=dict(kernel_size=0)), 'kernel_size must be a positive'),
    (dict(encoding=dict(proto_shape=[[0.0, 0.0]])), 'not all zero'),
    (dict(encoding=dict()), 'one of proto_shape and kernel_size'),
])
def test_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


def test_wrong_feature_channels_name_the_key():
    with pytest.raises(ValueError, match='in_channels=4'):
        _head()([torch.randn(1, 6, 4, 4)])


@pytest.mark.parametrize('dtype, max_error', [(torch.bfloat16, 1e-2), (torch.float16, 2e-3)])
def test_autocast_stays_close_to_fp32_on_a_large_map(dtype, max_error, device):
    """The probe's logits and its Net2Vec loss (IoU-encoded targets) on 128x256 features under autocast:
    within ``max_error`` (relative) of fp32; measured on CPU 2.6e-3 (bf16) and 3.4e-4 (fp16) for the
    logits; the loss and IoU encoding run in fp32."""
    head = _head(in_channels=16).to(device)
    torch.manual_seed(0)
    feats = [torch.randn(2, 16, 128, 256, device=device)]
    samples = [sample.to(device) for sample in _samples((torch.rand(2, 128, 256) > 0.7).long())]
    loss = lambda module: module.loss_by_feat(module(feats), samples)['loss_net2vec']  # noqa: E731
    for forward in (lambda module: module(feats), loss):
        output_error, grad_error, finite = autocast_deviation(head, forward, dtype)
        assert finite and output_error < max_error and grad_error < max_error, (output_error, grad_error)
