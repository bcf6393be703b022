"""PointRendHead: parity with mmseg's PointHead on copied weights, subdivision, losses, errors, bad
inputs (channel mismatches, all-background and all-ignore labels, non-positive scale factors)."""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmseg.models.decode_heads import PointHead
from mmseg.models.decode_heads.point_head import calculate_uncertainty

from mmext.ops.point_rend import grid_indices_to_coords, uncertain_point_coords_with_randomness
from mmext.seg.heads import PointRendHead
from mmext.testing import (autocast_deviation, build_seg_head, exact_fp32, parameter_grads,
                           seg_samples_from_labels)

HEAD_KWARGS = dict(in_channels=[8, 4], in_index=[0, 1], channels=16, num_classes=5, dropout_ratio=-1)
TEST_CFG = ConfigDict(subdivision_steps=2, subdivision_num_points=8196, scale_factor=2)
TRAIN_CFG = ConfigDict(num_points=64, oversample_ratio=3, importance_sample_ratio=0.75)


def _randomize(head):
    """Random weights and biases everywhere (the default init zeroes the biases)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return head


def _pair(**kwargs):
    theirs = _randomize(PointHead(**HEAD_KWARGS, **kwargs))
    ours = PointRendHead(**HEAD_KWARGS, **kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def _inputs(batch=2, size=(11, 13)):
    torch.manual_seed(0)
    feats = [torch.randn(batch, 8, *size), torch.randn(batch, 4, size[0] // 2, size[1] // 2)]
    return feats, torch.randn(batch, 5, *size)


@pytest.mark.parametrize('coarse_pred_each_layer', [True, False])
def test_channels_follow_mmseg_point_head(coarse_pred_each_layer):
    # Cityscapes: fine P2 256 ch + 19 coarse logits = 275 -> 256 (+19) x 3 -> 19.
    head = PointRendHead(in_channels=[256], in_index=[0], channels=256, num_classes=19,
                         coarse_pred_each_layer=coarse_pred_each_layer)
    extra = 19 if coarse_pred_each_layer else 0
    assert [fc.conv.in_channels for fc in head.fcs] == [275, 256 + extra, 256 + extra]
    assert [fc.conv.out_channels for fc in head.fcs] == [256, 256, 256]
    assert (head.fc_seg.in_channels, head.fc_seg.out_channels) == (256 + extra, 19)
    assert not hasattr(head, 'conv_seg')


@pytest.mark.parametrize('coarse_pred_each_layer', [True, False])
def test_inference_parity_with_mmseg_point_head(coarse_pred_each_layer):
    ours, theirs = _pair(coarse_pred_each_layer=coarse_pred_each_layer)
    feats, prev = _inputs()
    metas = [dict(img_shape=(48, 56))] * 2
    with torch.no_grad():
        out = ours.eval().predict(feats, prev, metas, TEST_CFG)
        ref = theirs.eval().predict(feats, prev, metas, TEST_CFG)
    assert out.shape == (2, 5, 48, 56)
    assert (out - ref).abs().max().item() <= 1e-5


def test_inference_parity_when_few_pixels_are_refined():
    ours, theirs = _pair()
    feats, prev = _inputs()
    cfg = ConfigDict(TEST_CFG, subdivision_steps=3, subdivision_num_points=37)
    metas = [dict(img_shape=(88, 104))] * 2
    with torch.no_grad():
        out, ref = ours.predict(feats, prev, metas, cfg), theirs.predict(feats, prev, metas, cfg)
    assert (out - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize('size', [(45, 45), (23, 31)])
def test_refined_pixel_coords_equal_mmseg_bit_for_bit(size):
    # At these widths (c + 0.5) / W and mmseg's 0.5 / W + c / W differ in the last fp32 bit for
    # 22 of 45 and 16 of 31 columns; the coords must be mmseg's exactly.
    logits = torch.randn(2, 5, *size)
    cfg = ConfigDict(subdivision_num_points=size[0] * size[1])
    indices, coords = PointHead(**HEAD_KWARGS).get_points_test(logits, calculate_uncertainty, cfg)
    assert torch.equal(grid_indices_to_coords(indices, *size, mmseg_rounding=True), coords)


@pytest.mark.parametrize('size, steps, num_points', [((45, 45), 3, 700), ((23, 31), 4, 300),
                                                     ((23, 31), 2, 8196)])
def test_inference_equals_mmseg_point_head_bit_for_bit(size, steps, num_points):
    ours, theirs = _pair()
    feats, prev = _inputs(size=size)
    cfg = ConfigDict(TEST_CFG, subdivision_steps=steps, subdivision_num_points=num_points)
    metas = [dict(img_shape=(size[0] * 2**steps, size[1] * 2**steps))] * 2
    with torch.no_grad():
        out = ours.eval().predict(feats, prev, metas, cfg)
        ref = theirs.eval().predict(feats, prev, metas, cfg)
    assert torch.equal(out, ref)


def test_training_points_match_mmseg_point_head():
    _, prev = _inputs()
    mmseg_head = PointHead(**HEAD_KWARGS)
    torch.manual_seed(3)
    ours = uncertain_point_coords_with_randomness(prev, **TRAIN_CFG)
    torch.manual_seed(3)
    theirs = mmseg_head.get_points_train(prev, calculate_uncertainty, TRAIN_CFG)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_training_parity_with_mmseg_point_head():
    # Same seed: the same points are drawn, so losses and the gradients of the weights and of the
    # (not detached) coarse logits agree.
    ours, theirs = _pair()
    feats, prev = _inputs()
    label = torch.randint(0, 5, (2, 11, 13))
    label[:, :3] = 255
    prev_ours, prev_theirs = prev.clone().requires_grad_(), prev.clone().requires_grad_()
    torch.manual_seed(3)
    loss = ours.loss(feats, prev_ours, seg_samples_from_labels(label), TRAIN_CFG)
    torch.manual_seed(3)
    ref = theirs.loss(feats, prev_theirs, seg_samples_from_labels(label), TRAIN_CFG)
    assert set(loss) == set(ref) == {'pointloss_ce', 'acc_point'}
    torch.testing.assert_close(loss['pointloss_ce'], ref['pointloss_ce'])
    torch.testing.assert_close(loss['acc_point'], ref['acc_point'])
    loss['pointloss_ce'].backward(), ref['pointloss_ce'].backward()
    assert prev_ours.grad.abs().sum() > 0
    torch.testing.assert_close(prev_ours.grad, prev_theirs.grad)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad)


def test_autocast_inference_matches_fp32():
    ours, _ = _pair()
    feats, prev = _inputs()
    metas = [dict(img_shape=(44, 52))] * 2
    with torch.no_grad():
        ref = ours.predict(feats, prev, metas, TEST_CFG)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = ours.predict([f.bfloat16() for f in feats], prev.bfloat16(), metas, TEST_CFG)
    # bf16 weights and activations: 3 significant digits; the same pixels are refined.
    assert (out.float().argmax(1) == ref.argmax(1)).float().mean() > 0.99
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_enough_points_refine_every_pixel():
    head = _randomize(PointRendHead(**HEAD_KWARGS))
    feats, prev = _inputs(size=(6, 7))
    with torch.no_grad():
        refined, coords = head.subdivide(feats, prev, dict(TEST_CFG, subdivision_steps=1))
        everywhere = grid_indices_to_coords(torch.arange(12 * 14).expand(2, -1), 12, 14, mmseg_rounding=True)
        mlp = head.point_logits(head._transform_inputs(feats), prev, everywhere)
    assert refined.shape == (2, 5, 12, 14) and coords[0].shape == (2, 168, 2)
    torch.testing.assert_close(refined.flatten(2), mlp, rtol=0, atol=1e-6)


def test_other_pixels_keep_the_bilinear_upsample():
    head = _randomize(PointRendHead(**HEAD_KWARGS))
    feats, prev = _inputs(size=(6, 7))
    with torch.no_grad():
        refined, (coords,) = head.subdivide(
            feats, prev, dict(TEST_CFG, subdivision_steps=1, subdivision_num_points=20))
        mlp = head.point_logits(head._transform_inputs(feats), prev, coords)
    upsampled = torch.nn.functional.interpolate(prev, scale_factor=2, mode='bilinear', align_corners=False)
    cols, rows = (coords[..., 0] * 14).long(), (coords[..., 1] * 12).long()  # pixel of each centre
    selected = torch.zeros(2, 12, 14, dtype=torch.bool)
    for b in range(2):
        selected[b, rows[b], cols[b]] = True
    assert selected.flatten(1).sum(1).tolist() == [20, 20]
    keep = (~selected).unsqueeze(1).expand_as(refined)
    torch.testing.assert_close(refined[keep], upsampled[keep], rtol=0, atol=0)
    for b in range(2):
        torch.testing.assert_close(refined[b][:, rows[b], cols[b]], mlp[b], rtol=0, atol=1e-6)


def test_zero_steps_give_the_coarse_prediction():
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    out = head.predict(feats, prev, [dict(img_shape=(11, 13))] * 2,
                       dict(TEST_CFG, subdivision_steps=0))
    torch.testing.assert_close(out, prev, rtol=0, atol=0)


def test_point_loss_closed_form_and_ignore_index():
    # Constant point logits (0, b, 0, 0, 0): every labelled point is class 1, so CE = log(1 + 4 e^-b)
    # and accuracy 100; the ignored rows (255) change neither.
    head = PointRendHead(**HEAD_KWARGS, loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    b = 1.5
    with torch.no_grad():
        head.fc_seg.weight.zero_()
        head.fc_seg.bias.copy_(torch.tensor([0, b, 0, 0, 0]))
    feats, prev = _inputs()
    label = torch.ones(2, 11, 13, dtype=torch.long)
    label[:, :5] = 255
    losses = head.loss(feats, prev, seg_samples_from_labels(label), TRAIN_CFG)
    torch.testing.assert_close(losses['pointloss_ce'], torch.tensor(math.log(1 + 4 * math.exp(-b))))
    assert losses['acc_point'].item() == 100.0


def test_point_losses_of_the_same_name_are_summed():
    # The setup above with two CE terms named loss_ce (weights 1 and 0.5): their sum, as in mmseg's
    # BaseDecodeHead (mmseg's PointHead would keep only the last, 0.5 x).
    ce = dict(type='CrossEntropyLoss', avg_non_ignore=True)
    head = PointRendHead(**HEAD_KWARGS, loss_decode=[ce, dict(ce, loss_weight=0.5)])
    b = 1.5
    with torch.no_grad():
        head.fc_seg.weight.zero_()
        head.fc_seg.bias.copy_(torch.tensor([0, b, 0, 0, 0]))
    feats, prev = _inputs()
    losses = head.loss(feats, prev, seg_samples_from_labels(torch.ones(2, 11, 13, dtype=torch.long)),
                       TRAIN_CFG)
    assert set(losses) == {'pointloss_ce', 'acc_point'}
    torch.testing.assert_close(losses['pointloss_ce'], torch.tensor(1.5 * math.log(1 + 4 * math.exp(-b))))


def test_point_loss_of_all_ignored_labels_is_zero():
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    losses = head.loss(feats, prev, seg_samples_from_labels(torch.full((2, 11, 13), 255)), TRAIN_CFG)
    assert losses['pointloss_ce'].item() == 0.0


def test_dropout_acts_on_point_features():
    head = PointRendHead(**dict(HEAD_KWARGS, dropout_ratio=0.5))
    assert type(head.dropout) is torch.nn.Dropout  # the base class's Dropout2d would drop channels


def test_align_corners_true_refines_the_selected_pixels_exactly():
    # With enough points every pixel of the x2 map is re-predicted at its own grid position.
    head = _randomize(PointRendHead(**dict(HEAD_KWARGS, align_corners=True)))
    feats, prev = _inputs(size=(6, 7))
    with torch.no_grad():
        refined, _ = head.subdivide(feats, prev, dict(TEST_CFG, subdivision_steps=1))
        h, w = refined.shape[2:]
        corners = torch.stack(torch.meshgrid(torch.arange(w) / (w - 1), torch.arange(h) / (h - 1),
                                             indexing='xy'), dim=2).view(1, -1, 2).expand(2, -1, -1)
        mlp = head.point_logits(head._transform_inputs(feats), prev, corners)
    torch.testing.assert_close(refined.flatten(2), mlp, rtol=0, atol=1e-6)


# -- bad input ----------------------------------------------------------------------------------------

def test_wrong_fine_feature_channels():
    head = PointRendHead(**dict(HEAD_KWARGS, in_channels=[8, 6]))
    feats, prev = _inputs()
    with pytest.raises(ValueError, match=r'in_channels=\[8, 6\].*has \[8, 4\] channels'):
        head.predict(feats, prev, [dict(img_shape=(11, 13))] * 2, TEST_CFG)


@pytest.mark.parametrize('key, value, match', [
    ('importance_sample_ratio', 1.2, r'train_cfg: importance_sample_ratio must lie in \[0, 1\], got 1.2'),
    ('importance_sample_ratio', -0.5, r'train_cfg: importance_sample_ratio must lie in \[0, 1\], got -0.5'),
    ('oversample_ratio', 0.5, 'train_cfg: oversample_ratio must be >= 1, got 0.5'),
])
def test_bad_sampling_ratios(key, value, match):
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    with pytest.raises(ValueError, match=match):
        head.loss(feats, prev, seg_samples_from_labels(torch.zeros(2, 11, 13, dtype=torch.long)),
                  ConfigDict(TRAIN_CFG, **{key: value}))


def test_train_cfg_without_point_settings():
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    with pytest.raises(KeyError, match='model.train_cfg.num_points/oversample_ratio/importance_sample_ratio'):
        head.loss(feats, prev, seg_samples_from_labels(torch.zeros(2, 11, 13, dtype=torch.long)),
                  ConfigDict())


@pytest.mark.parametrize('test_cfg', [ConfigDict(mode='whole'), None, ConfigDict(subdivision_steps=2)])
def test_test_cfg_without_subdivision_settings(test_cfg):
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    with pytest.raises(KeyError, match='model.test_cfg.*subdivision_num_points/scale_factor'):
        head.predict(feats, prev, [dict(img_shape=(11, 13))] * 2, test_cfg)


def test_bad_subdivision_values():
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    with pytest.raises(ValueError, match='subdivision_num_points >= 1'):
        head.predict(feats, prev, [dict(img_shape=(11, 13))] * 2, dict(TEST_CFG, subdivision_num_points=0))


def test_coarse_logits_with_other_num_classes():
    head = PointRendHead(**HEAD_KWARGS)
    feats, _ = _inputs()
    with pytest.raises(ValueError, match='decode_head\\[0\\] have 19 channels, but num_classes=5'):
        head.predict(feats, torch.randn(2, 19, 11, 13), [dict(img_shape=(11, 13))] * 2, TEST_CFG)


def test_binary_sigmoid_output_is_refused():
    with pytest.raises(ValueError, match='out_channels=1'):
        PointRendHead(**dict(HEAD_KWARGS, num_classes=2, out_channels=1,
                             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)))


def test_tensor_mode_points_to_predict():
    head = PointRendHead(**HEAD_KWARGS)
    feats, prev = _inputs()
    with pytest.raises(TypeError, match="mode='predict'"):
        head(feats, prev)  # what CascadeEncoderDecoder's mode='tensor' calls


def test_missing_coarse_head_in_a_plain_encoder_decoder():
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(dict(
        type='EncoderDecoder',
        backbone=dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=16),
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=8, num_outs=4),
        decode_head=dict(type='PointRendHead', in_channels=[8], in_index=[0], channels=8, num_classes=3),
        train_cfg=TRAIN_CFG, test_cfg=ConfigDict(TEST_CFG, mode='whole')))
    samples = seg_samples_from_labels(torch.zeros(1, 64, 64, dtype=torch.long))
    for sample in samples:
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
    with pytest.raises(TypeError, match=r"decode_head=\[dict\(type='FPNHead'"):
        model.loss(torch.rand(1, 3, 64, 64), samples)
    with pytest.raises(TypeError, match='CascadeEncoderDecoder'):
        model.predict(torch.rand(1, 3, 64, 64), samples)


# -- bad input: channel mismatches, all-background and all-ignore labels, scale factors ---------------

def _point_head(**kwargs):
    return build_seg_head(PointRendHead, **dict(dict(in_channels=[8], in_index=[0], channels=16,
                                                     num_classes=3, dropout_ratio=-1), **kwargs))


def _point_wrong_fine_channels():
    _point_head().predict([torch.randn(2, 6, 5, 5)], torch.randn(2, 3, 5, 5), [dict(img_shape=(5, 5))] * 2,
                          TEST_CFG)


def _point_wrong_coarse_channels():
    _point_head().loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 4, 5, 5),
                       seg_samples_from_labels(torch.zeros(2, 5, 5, dtype=torch.long)), TRAIN_CFG)


CHANNEL_CASES = [
    (_point_wrong_fine_channels, ValueError, r'in_channels=\[8\].*has \[6\] channels'),
    (_point_wrong_coarse_channels, ValueError, r'decode_head\[0\] have 4 channels, but num_classes=3'),
]


@pytest.mark.parametrize('case, error, match',
                         [pytest.param(*case, id=case[0].__name__.strip('_')) for case in CHANNEL_CASES])
def test_channel_mismatch(case, error, match):
    with pytest.raises(error, match=match):
        case()


def test_point_rend_all_background_labels():
    # Zero point MLP output weights give logits = bias, so the point CE has the closed form
    # log(sum_k exp(b_k)) - b_0 for labels that are all 0.
    head = _point_head()
    bias = torch.tensor([0.5, -1.0, 2.0])
    with torch.no_grad():
        head.fc_seg.weight.zero_()
        head.fc_seg.bias.copy_(bias)
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       seg_samples_from_labels(torch.zeros(2, 9, 9, dtype=torch.long)), TRAIN_CFG)
    torch.testing.assert_close(losses['pointloss_ce'], torch.logsumexp(bias, 0) - bias[0])


def test_point_rend_all_ignore_labels_give_zero_loss_and_zero_gradient():
    head = _point_head()
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       seg_samples_from_labels(torch.full((2, 9, 9), 255)), TRAIN_CFG)
    assert losses['pointloss_ce'].item() == 0.0
    losses['pointloss_ce'].backward()
    assert all(g.abs().max() == 0 for g in parameter_grads(head))


@pytest.mark.parametrize('scale_factor', [0, -2])
def test_point_rend_non_positive_scale_factor(scale_factor):
    with pytest.raises(ValueError, match=rf'test_cfg\.scale_factor must be > 0, got {scale_factor}'):
        _point_head().predict([torch.randn(1, 8, 3, 3)], torch.randn(1, 3, 3, 3), [dict(img_shape=(3, 3))],
                              dict(TEST_CFG, scale_factor=scale_factor))


@pytest.mark.parametrize('dtype, max_error', [(torch.bfloat16, 3e-2), (torch.float16, 3e-2)])
def test_autocast_training_stays_close_to_fp32_on_a_large_map(dtype, max_error, device):
    """The point loss on 128x256 coarse logits under autocast, the same weights and points: loss and
    gradients within ``max_error`` (relative) of fp32; measured on CPU 3.4e-4 / 1.0e-2 in bf16."""
    head = _randomize(PointRendHead(**HEAD_KWARGS)).train().to(device)
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 128, 256, device=device), torch.randn(2, 4, 64, 128, device=device)]
    prev = torch.randn(2, 5, 128, 256, device=device)
    samples = [s.to(device) for s in seg_samples_from_labels(torch.randint(0, 5, (2, 512, 1024)))]

    def point_loss(module):
        torch.manual_seed(0)  # the same points in both passes
        return module.loss(feats, prev, samples, TRAIN_CFG)['pointloss_ce']

    output_error, grad_error, finite = autocast_deviation(head, point_loss, dtype)
    assert finite and output_error < max_error and grad_error < max_error, (output_error, grad_error)


@pytest.mark.parametrize('dtype, max_error', [(torch.bfloat16, 2e-2), (torch.float16, 2e-2)])
def test_autocast_inference_of_fp32_inputs_on_a_large_map(dtype, max_error, device):
    """fp32 features and coarse logits, inference under autocast (a validation step of an amp run): the
    point MLP's fp16/bf16 logits are written into the fp32 map, within ``max_error`` (relative) of fp32
    and refining the same pixels."""
    head = _randomize(PointRendHead(**HEAD_KWARGS)).eval().to(device)
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 128, 256, device=device), torch.randn(2, 4, 64, 128, device=device)]
    prev = torch.randn(2, 5, 128, 256, device=device)
    metas = [dict(img_shape=(256, 512))] * 2
    with torch.no_grad(), exact_fp32(device.type):
        reference = head.predict(feats, prev, metas, TEST_CFG)
        with torch.autocast(device.type, dtype=dtype):
            mixed = head.predict(feats, prev, metas, TEST_CFG)
    assert mixed.dtype == torch.float32
    error = float((mixed - reference).norm() / reference.norm())
    assert error < max_error, error
    assert (mixed.argmax(1) == reference.argmax(1)).float().mean() > 0.99

