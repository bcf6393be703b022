"""ObjectContextHead: parity with mmseg's OCRHead on copied weights, the scale > 1 path, errors, bad
inputs (channel mismatches, all-ignore labels, features smaller than the pooling)."""
import copy

import pytest
import torch
from mmseg.models.decode_heads import FCNHead, OCRHead

from mmext.seg.heads import ObjectContextHead
from mmext.testing import build_seg_head, parameter_grads, seg_samples_from_labels
from mmext.testing.precision import autocast_deviation

HEAD_KWARGS = dict(in_channels=8, channels=4, num_classes=5, ocr_channels=8)


def _randomize_norm_stats(module):
    """Non-trivial BN running statistics, so that eval-mode parity covers them."""
    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


def _pair(**kwargs):
    torch.manual_seed(0)
    ours = ObjectContextHead(**HEAD_KWARGS, **kwargs)
    theirs = OCRHead(**HEAD_KWARGS, **kwargs)
    _randomize_norm_stats(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize('norm_cfg', [None, dict(type='BN')])
def test_parity_with_mmseg_ocr_head_eval(norm_cfg):
    ours, theirs = _pair(norm_cfg=norm_cfg)
    ours.eval(), theirs.eval()
    torch.manual_seed(0)
    inputs = [torch.randn(2, 8, 23, 23)]
    prev = FCNHead(in_channels=8, channels=4, num_classes=5).eval()(inputs)
    with torch.no_grad():
        out, ref = ours(inputs, prev), theirs(inputs, prev)
    assert out.shape == (2, 5, 23, 23)
    assert (out - ref).abs().max().item() <= 1e-5


def test_parity_with_mmseg_ocr_head_training_gradients():
    # Train mode (BN batch statistics), no dropout: forward values and weight gradients agree.
    ours, theirs = _pair(norm_cfg=dict(type='BN'), dropout_ratio=0)
    torch.manual_seed(0)
    inputs, prev = [torch.randn(2, 8, 11, 13)], torch.randn(2, 5, 11, 13)
    out, ref = ours(inputs, prev), theirs(inputs, prev)
    assert (out - ref).abs().max().item() <= 1e-5
    out.square().sum().backward(), ref.square().sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-5)


def test_parameter_order_and_seeded_init_equal_mmseg():
    # Optimizers and seeded inits see parameters in registration order, not by name.
    kwargs = dict(HEAD_KWARGS, norm_cfg=dict(type='BN'))
    torch.manual_seed(0)
    ours = ObjectContextHead(**kwargs)
    ours.init_weights()
    torch.manual_seed(0)
    theirs = OCRHead(**kwargs)
    theirs.init_weights()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()][:2] == [
        'conv_seg.weight', 'conv_seg.bias']  # then object_context_block..., bottleneck last
    assert [n for n, _ in ours.named_parameters()][-3:] == [
        'bottleneck.conv.weight', 'bottleneck.bn.weight', 'bottleneck.bn.bias']
    for (name, p), (_, q) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(p, q), name


def _sgd_step(head, optimizer, inputs, prev):
    optimizer.zero_grad()
    head(inputs, prev).square().mean().backward()
    optimizer.step()


def test_mmseg_optimizer_state_resumes_onto_the_same_parameters():
    # An mmseg OCRNet run takes one SGD-with-momentum step; its weights and optimizer state then
    # resume under ObjectContextHead, and the next step equals mmseg's.
    kwargs = dict(HEAD_KWARGS, norm_cfg=dict(type='BN'), dropout_ratio=0)
    torch.manual_seed(0)
    theirs = OCRHead(**kwargs)
    ours = ObjectContextHead(**kwargs)
    inputs, prev = [torch.randn(2, 8, 9, 10)], torch.randn(2, 5, 9, 10)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    _sgd_step(theirs, theirs_opt, inputs, prev)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours_opt = torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    ours_opt.load_state_dict(copy.deepcopy(theirs_opt.state_dict()))  # as from a checkpoint
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.equal(ours_opt.state[p]['momentum_buffer'],
                           theirs_opt.state[theirs_params[name]]['momentum_buffer']), name
    _sgd_step(theirs, theirs_opt, inputs, prev)
    _sgd_step(ours, ours_opt, inputs, prev)
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p, theirs_params[name], rtol=0, atol=1e-6, msg=name)


def test_parity_resize_concat_inputs():
    # HRNet-style multi-level input, as in mmseg's ocrnet_hr18 configs.
    kwargs = dict(in_channels=[4, 6], in_index=(0, 1), input_transform='resize_concat',
                  channels=8, ocr_channels=4, num_classes=3, dropout_ratio=-1)
    torch.manual_seed(0)
    ours, theirs = ObjectContextHead(**kwargs).eval(), OCRHead(**kwargs).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    inputs = [torch.randn(1, 4, 16, 16), torch.randn(1, 6, 8, 8)]
    prev = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert (ours(inputs, prev) - theirs(inputs, prev)).abs().max().item() <= 1e-5


def test_scale_two_works_where_mmseg_fails():
    ours, theirs = _pair(scale=2, norm_cfg=dict(type='BN'))
    ours.eval(), theirs.eval()
    inputs, prev = [torch.randn(1, 8, 12, 12)], torch.randn(1, 5, 12, 12)
    with pytest.raises(Exception):
        theirs(inputs, prev)
    with torch.no_grad():
        out = ours(inputs, prev)
    assert out.shape == (1, 5, 12, 12) and torch.isfinite(out).all()


def test_scale_two_with_one_region_equals_scale_one():
    # One region and constant logits: the gather is the spatial mean whatever the temperature, and
    # the context is constant, so pooling the queries and resizing the context back changes nothing.
    torch.manual_seed(0)
    kwargs = dict(HEAD_KWARGS, norm_cfg=dict(type='BN'))
    pooled, plain = ObjectContextHead(scale=2, **kwargs).eval(), ObjectContextHead(**kwargs).eval()
    _randomize_norm_stats(plain)
    pooled.load_state_dict(plain.state_dict())
    inputs, prev = [torch.randn(2, 8, 10, 10)], torch.zeros(2, 1, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(pooled(inputs, prev), plain(inputs, prev))
    # With several regions the pooled path is really taken: the outputs differ.
    prev = torch.randn(2, 5, 10, 10)
    with torch.no_grad():
        assert not torch.allclose(pooled(inputs, prev), plain(inputs, prev), atol=1e-4)


def test_one_class_context_is_identical_at_every_pixel():
    head = ObjectContextHead(**HEAD_KWARGS, norm_cfg=dict(type='BN')).eval()
    captured = {}
    head.object_context_block.out_project.register_forward_hook(
        lambda m, i, o: captured.setdefault('context', o))
    with torch.no_grad():
        head([torch.randn(1, 8, 6, 7)], torch.randn(1, 1, 6, 7))
    context = captured['context'][0].flatten(1)  # (C, N)
    torch.testing.assert_close(context, context[:, :1].expand_as(context))


def test_prev_output_resized_to_feature_size():
    head = ObjectContextHead(**HEAD_KWARGS).eval()
    inputs = [torch.randn(1, 8, 16, 16)]
    with torch.no_grad():
        out = head(inputs, torch.zeros(1, 5, 8, 8))
        torch.testing.assert_close(out, head(inputs, torch.zeros(1, 5, 16, 16)))


def test_missing_previous_stage_is_a_clear_error():
    head = ObjectContextHead(**HEAD_KWARGS)
    with pytest.raises(TypeError, match='CascadeEncoderDecoder'):
        head([torch.randn(1, 8, 6, 6)])
    with pytest.raises(TypeError, match='CascadeEncoderDecoder'):  # as EncoderDecoder calls it
        head.loss([torch.randn(1, 8, 6, 6)], [], dict())  # (inputs, data_samples, train_cfg)
    with pytest.raises(TypeError, match='CascadeEncoderDecoder'):  # EncoderDecoder.predict
        head.predict([torch.randn(1, 8, 6, 6)], [dict()], dict())


def test_wrong_in_channels_names_the_key():
    head = ObjectContextHead(**HEAD_KWARGS)
    with pytest.raises(ValueError, match=r'in_channels=8.*has 16 channels'):
        head([torch.randn(1, 16, 6, 6)], torch.randn(1, 5, 6, 6))


# -- bad input ----------------------------------------------------------------------------------------

def _ocr_head(**kwargs):
    return build_seg_head(ObjectContextHead, **dict(dict(in_channels=8, channels=4, num_classes=3,
                                                         ocr_channels=8, dropout_ratio=-1), **kwargs))


def _ocr_wrong_in_channels():
    _ocr_head(in_channels=8)([torch.randn(2, 6, 5, 5)], torch.randn(2, 3, 5, 5))


def _ocr_wrong_resize_concat_channels():
    head = _ocr_head(in_channels=[4, 4], in_index=[0, 1], input_transform='resize_concat')
    head([torch.randn(2, 4, 5, 5), torch.randn(2, 6, 3, 3)], torch.randn(2, 3, 5, 5))


def _ocr_no_first_stage():
    _ocr_head().loss([torch.randn(2, 8, 5, 5)],
                     seg_samples_from_labels(torch.zeros(2, 5, 5, dtype=torch.long)))


CHANNEL_CASES = [
    (_ocr_wrong_in_channels, ValueError, r'in_channels=8.*has 6 channels'),
    (_ocr_wrong_resize_concat_channels, ValueError, r'in_channels=8.*has 10 channels'),
    (_ocr_no_first_stage, TypeError, r'CascadeEncoderDecoder'),
]


@pytest.mark.parametrize('case, error, match',
                         [pytest.param(*case, id=case[0].__name__.strip('_')) for case in CHANNEL_CASES])
def test_channel_mismatch(case, error, match):
    with pytest.raises(error, match=match):
        case()


@pytest.mark.parametrize('loss_decode', [dict(type='CrossEntropyLoss'),
                                         dict(type='CrossEntropyLoss', avg_non_ignore=True)],
                         ids=['avg-all', 'avg-non-ignore'])
def test_ocr_all_ignore_labels_give_zero_loss_and_zero_gradient(loss_decode):
    head = _ocr_head(loss_decode=loss_decode)
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       seg_samples_from_labels(torch.full((2, 20, 20), 255)), None)
    assert losses['loss_ce'].item() == 0.0
    losses['loss_ce'].backward()
    assert all(g.abs().max() == 0 for g in parameter_grads(head))


def test_ocr_scale_larger_than_the_features():
    head = _ocr_head(scale=2)
    with pytest.raises(ValueError, match=r'scale=2 max-pools .* features are only \(1, 1\)'):
        head([torch.randn(2, 8, 1, 1)], torch.randn(2, 3, 1, 1))


def test_ocr_one_region_feature_under_batch_norm():
    head = _ocr_head(num_classes=2, out_channels=1, norm_cfg=dict(type='BN'),
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)).train()
    with pytest.raises(ValueError, match=r'BatchNorm.*only one.*batch size >= 2'):
        head([torch.randn(1, 8, 5, 5)], torch.randn(1, 1, 5, 5))
    assert head.eval()([torch.randn(1, 8, 5, 5)], torch.randn(1, 1, 5, 5)).isfinite().all()


# -- mixed precision ---------------------------------------------------------------------------------

@pytest.mark.parametrize('dtype, max_error', [(torch.bfloat16, 1e-2), (torch.float16, 3e-2)])
def test_autocast_stays_close_to_fp32_on_a_large_map(dtype, max_error, device):
    """128x256 features and 19 regions under autocast, the same weights: outputs and gradients within
    ``max_error`` (relative norm) of fp32; measured on CPU 5.0e-3 / 4.7e-3 (bf16), 6.5e-4 / 1.2e-2
    (fp16). Eval mode: in train mode BN divides the random head's tiny batch std and amplifies every
    rounding (0.27 for mmseg's OCRHead and ours alike)."""
    torch.manual_seed(0)
    head = ObjectContextHead(in_channels=16, channels=16, num_classes=19, ocr_channels=8, dropout_ratio=0,
                             norm_cfg=dict(type='BN')).eval().to(device)
    feats, prev = [torch.randn(1, 16, 128, 256, device=device)], torch.randn(1, 19, 128, 256, device=device)
    output_error, grad_error, finite = autocast_deviation(head, lambda m: m(feats, prev), dtype)
    assert finite and output_error < max_error and grad_error < max_error, (output_error, grad_error)
