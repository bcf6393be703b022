"""DLDEHead in mmdet's dense-head test style: losses with empty and one ground truth, the scores
that predict returns, mean tracking, buffers in checkpoints, errors, bad input (channel mismatches,
empty, zero-area, non-finite and malformed ground truth, images smaller than the strides)."""
import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmext  # noqa: F401  (registers mmdet's and mmext's modules)
from mmext.det.heads import DLDEHead
from mmext.ops.directional import class_embedding_sums, modified_sigmoid, unit_embeddings
from mmext.testing.precision import autocast_deviation

IMG_META = dict(img_shape=(64, 64), pad_shape=(64, 64), scale_factor=(1.0, 1.0))
TRAIN_CFG = ConfigDict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                  ignore_iof_thr=-1),
    sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)
TEST_CFG = ConfigDict(nms_pre=1000, min_bbox_size=0, score_thr=0.0,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=1000)
SIGMOID_RATIO = 1 / (1 + math.exp(3.5)) / (1 / (1 + math.exp(-3.5)))  # sigmoid(-3.5) / sigmoid(3.5)


def _head(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_classes=4, in_channels=8, feat_channels=8, stacked_convs=1, embedding_size=6,
               anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                     ratios=[0.5, 1.0, 2.0], strides=[8, 16]),
               loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0), train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    with DefaultScope.overwrite_default_scope('mmdet'):  # other tests may leave mmseg's scope
        head = DLDEHead(**dict(cfg, **kwargs))
    head.init_weights()
    return head


def _feats(batch=1, channels=8):
    torch.manual_seed(1)
    return (torch.rand(batch, channels, 8, 8), torch.rand(batch, channels, 4, 4))


def _gt(boxes=(), labels=()):
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    gt.labels = torch.tensor(labels, dtype=torch.long)
    return gt


def _samples(*gts):
    return [DetDataSample(gt_instances=gt, metainfo=IMG_META) for gt in gts]


ONE_BOX = [10.0, 12.0, 42.0, 40.0]
ONE_GT = ([ONE_BOX], [2])


def test_empty_ground_truth_gives_classification_loss_only():
    head = _head().train()
    losses = head.loss(_feats(), _samples(_gt()))
    assert sum(losses['loss_cls']).item() > 0
    assert sum(losses['loss_bbox']).item() == 0
    assert head.means.abs().sum() == 0  # no positives: means unchanged


def test_one_ground_truth_gives_all_losses_positive():
    head = _head().train()
    losses = head.loss(_feats(), _samples(_gt(*ONE_GT)))
    assert sum(losses['loss_cls']).item() > 0
    assert sum(losses['loss_bbox']).item() > 0


def test_zero_means_score_every_anchor_and_class_0_0302():
    head = _head().eval()
    embeddings, _ = head(_feats())
    for emb in embeddings:
        scores = torch.sigmoid(head.embeddings_to_logits(emb))
        assert scores.shape[1] == 3 * 4
        torch.testing.assert_close(scores, torch.full_like(scores, SIGMOID_RATIO))
    assert SIGMOID_RATIO == pytest.approx(0.030197, abs=1e-6)


def test_zero_embedding_gives_no_nan():
    head = _head().eval()
    with torch.no_grad():
        head.retina_emb.weight.zero_(), head.retina_emb.bias.zero_()
    head.means.copy_(unit_embeddings(torch.randn(4, 6)))
    embeddings, _ = head(_feats())
    assert all(torch.isfinite(head.embeddings_to_logits(e)).all() for e in embeddings)


def _unit_anchor_embeddings(embedding_map, embedding_size=6):
    """(B, A*E, H, W) -> (B, H*W*A, E) unit embeddings in mmdet's anchor order, written out: the
    head never builds this tensor (it scores the map in place)."""
    flat = embedding_map.permute(0, 2, 3, 1).reshape(embedding_map.shape[0], -1, embedding_size)
    return unit_embeddings(flat)


def test_predict_returns_the_modified_sigmoid_probabilities():
    head = _head().eval()
    head.means.copy_(unit_embeddings(torch.randn(4, 6)))
    with torch.no_grad():
        head.class_weight.copy_(torch.tensor([7.0, 5.0, 9.0, 3.0]))
        head.class_bias.copy_(torch.tensor([-0.5, -0.2, -0.7, 0.1]))
        embeddings, _ = head(_feats())
        (result,) = head.predict(_feats(), _samples(_gt()), rescale=False)
        expected = torch.cat([modified_sigmoid(_unit_anchor_embeddings(e)[0] @ head.means.t(),
                                               head.class_weight, head.class_bias).flatten()
                              for e in embeddings])
    # Before NMS every (anchor, class) pair is a candidate; NMS keeps a subset of those scores.
    assert len(result.scores) > 0
    matches = (result.scores[:, None] - expected[None]).abs().min(dim=1).values
    assert matches.max() < 1e-6
    assert result.scores.max() == pytest.approx(expected.max().item(), rel=1e-6)


def test_anchor_logits_are_the_class_maps_in_anchor_order():
    head = _head().eval()
    head.means.copy_(unit_embeddings(torch.randn(4, 6)))
    with torch.no_grad():
        embedding_map = head(_feats(batch=2))[0][0]  # (2, 3 * 6, 8, 8)
        class_map = head.embeddings_to_logits(embedding_map)  # (2, 3 * 4, 8, 8)
        anchor_logits = head.anchor_logits(embedding_map)
    assert anchor_logits.shape == (2, 8 * 8 * 3, 4)
    assert torch.equal(anchor_logits, class_map.permute(0, 2, 3, 1).reshape(2, -1, 4))


def _positive_embedding_sums(head, feats, samples):
    """The normalized-by-nothing per-class sums of the positive embeddings under mmdet's assignment."""
    with torch.no_grad():
        embeddings, _ = head(feats)
        head.eval()  # get_targets without tracking
        metas = [IMG_META] * len(samples)
        anchors, valid = head.get_anchors([e.shape[-2:] for e in embeddings], metas, device='cpu')
        labels = head.get_targets(anchors, valid, [s.gt_instances for s in samples], metas)[0]
        head.train()
    return sum(class_embedding_sums(_unit_anchor_embeddings(e).flatten(0, 1), lab.flatten(), 4)
               for e, lab in zip(embeddings, labels))


def test_batch_mode_first_update_equals_the_normalized_positive_sum():
    head = _head().train()
    feats, samples = _feats(), _samples(_gt(*ONE_GT))
    sums = _positive_embedding_sums(head, feats, samples)
    assert sums[2].norm() > 0 and sums[[0, 1, 3]].abs().sum() == 0
    head.loss(feats, samples)
    torch.testing.assert_close(head.means[2], sums[2] / sums[2].norm())
    assert head.means[[0, 1, 3]].abs().sum() == 0  # classes without positives are unchanged


def test_batch_mode_second_update_is_an_ema_step():
    head = _head(means_lr=0.25).train()
    head.means[2] = torch.tensor([1.0, 0, 0, 0, 0, 0])
    feats, samples = _feats(), _samples(_gt(*ONE_GT))
    direction = _positive_embedding_sums(head, feats, samples)[2]
    direction = direction / direction.norm()
    head.loss(feats, samples)
    expected = 0.75 * torch.tensor([1.0, 0, 0, 0, 0, 0]) + 0.25 * direction
    torch.testing.assert_close(head.means[2], expected / expected.norm())


def test_manual_mode_accumulates_sums_and_updates_on_request():
    head = _head(means_update='manual').train()
    head.means_hook_attached = True
    feats, samples = _feats(), _samples(_gt(*ONE_GT))
    sums = _positive_embedding_sums(head, feats, samples)
    head.loss(feats, samples)
    head.loss(feats, samples)
    torch.testing.assert_close(head.embedding_sums, 2 * sums)
    assert head.means.abs().sum() == 0  # nothing changes until the hook asks
    head.update_means_from_sums()
    torch.testing.assert_close(head.means[2], sums[2] / sums[2].norm())
    assert head.means[[0, 1, 3]].abs().sum() == 0 and torch.isfinite(head.means).all()
    assert head.embedding_sums.abs().sum() == 0


def test_manual_mode_without_hook_warns_once():
    head = _head(means_update='manual').train()
    with pytest.warns(UserWarning, match='DLDEMeansHook'):
        head.loss(_feats(), _samples(_gt(*ONE_GT)))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        head.loss(_feats(), _samples(_gt(*ONE_GT)))


def test_means_and_sums_are_saved_and_restored():
    head = _head(means_update='manual')
    head.means.copy_(unit_embeddings(torch.randn(4, 6)))
    head.embedding_sums.copy_(torch.randn(4, 6))
    state = head.state_dict()
    assert {'means', 'embedding_sums', 'class_weight', 'class_bias'} <= set(state)
    restored = _head(means_update='manual')
    restored.load_state_dict(state, strict=True)
    torch.testing.assert_close(restored.means, head.means)
    torch.testing.assert_close(restored.embedding_sums, head.embedding_sums)


def test_gradients_reach_embeddings_weight_and_bias_not_means():
    head = _head().train()
    head.means.copy_(unit_embeddings(torch.randn(4, 6)))
    losses = head.loss(_feats(), _samples(_gt(*ONE_GT)))
    sum(losses['loss_cls']).backward()
    assert head.retina_emb.weight.grad.abs().sum() > 0
    assert head.class_weight.grad.abs().sum() > 0 and head.class_bias.grad.abs().sum() > 0
    assert not head.means.requires_grad


def _reference_run(means_update):
    """Three SGD steps on two images: per step the losses, the gradients and the means (or sums)."""
    head = _head(means_update=means_update, means_lr=0.3).train()
    head.means_hook_attached = True
    optimizer = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9)
    feats = tuple(f.requires_grad_() for f in _feats(batch=2))
    samples = _samples(_gt(*ONE_GT), _gt([[4.0, 4.0, 30.0, 20.0], [30.0, 28.0, 60.0, 62.0]], [0, 3]))
    steps = []
    for _ in range(3):
        optimizer.zero_grad()
        for f in feats:
            f.grad = None
        losses = head.loss(feats, samples)
        sum(sum(v) for v in losses.values()).backward()
        steps.append(dict(
            losses={k: [v.item() for v in vs] for k, vs in losses.items()},
            grad_norms={n: p.grad.norm().item() for n, p in head.named_parameters()},
            grads={n: p.grad.flatten().tolist() for n, p in head.named_parameters()
                   if n.startswith('class_')},
            feat_grad_norms=[f.grad.norm().item() for f in feats],
            means=head.means.flatten().tolist(), sums=head.embedding_sums.flatten().tolist()))
        optimizer.step()
        if means_update == 'manual':
            head.update_means_from_sums()
    return steps


@pytest.mark.parametrize('means_update', ['batch', 'manual'])
def test_losses_gradients_and_means_equal_the_recorded_reference(means_update):
    # dlde_reference.json was recorded by _reference_run from the head before issue 13 moved the mean
    # update out of get_targets into loss_by_feat (commit 0565050): the refactor changes no number.
    with open(Path(__file__).with_name('dlde_reference.json')) as f:
        reference = json.load(f)[means_update]
    for step, (ours, ref) in enumerate(zip(_reference_run(means_update), reference)):
        for key in ref:
            torch.testing.assert_close(ours[key], ref[key], rtol=1e-6, atol=1e-6, msg=f'step {step}: {key}')


def test_get_targets_is_mmdets_and_leaves_the_means_alone():
    # The mean update is a visible step of loss_by_feat; assigning anchors has no side effect.
    head = _head().train()
    embeddings, _ = head(_feats())
    anchors, valid = head.get_anchors([e.shape[-2:] for e in embeddings], [IMG_META], device='cpu')
    labels = head.get_targets(anchors, valid, [_gt(*ONE_GT)], [IMG_META])[0]
    assert (torch.cat(labels, 1) == 2).sum() > 0 and head.means.abs().sum() == 0


# -- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, match', [
    (dict(means_update='epoch'), "means_update='epoch'"),
    (dict(means_lr=0.0), r'means_lr=0.0 must lie in \(0, 1\]'),
    (dict(means_lr=1.5), r'means_lr=1.5 must lie in \(0, 1\]'),
    (dict(embedding_size=1), 'embedding_size=1 must be >= 2'),
    (dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False)), 'use_sigmoid=True'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _head(**kwargs)


def test_retinahead_positional_arguments_keep_their_places():
    """RetinaHead's positional arguments, in its order and with its defaults, init_cfg (the seventh)
    included; DLDE's own arguments are keyword-only."""
    from mmdet.models.dense_heads import RetinaHead
    params, retina = inspect.signature(DLDEHead).parameters, inspect.signature(RetinaHead).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == [n for n, p in retina.items() if p.kind is p.POSITIONAL_OR_KEYWORD] == [
        'num_classes', 'in_channels', 'stacked_convs', 'conv_cfg', 'norm_cfg', 'anchor_generator', 'init_cfg']
    assert all(params[n].default == retina[n].default for n in positional[2:-1])
    assert [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY] == [
        'embedding_size', 'means_update', 'means_lr', 'init_weight', 'init_bias']
    anchor_generator = dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1, ratios=[1.0],
                            strides=[8])
    init_cfg = dict(type='Normal', layer='Conv2d', std=0.02)
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = DLDEHead(4, 8, 2, None, None, anchor_generator, init_cfg, feat_channels=8, embedding_size=6)
        retina_head = RetinaHead(4, 8, 2, None, None, anchor_generator, init_cfg, feat_channels=8)
    assert head.stacked_convs == retina_head.stacked_convs == 2
    assert len(head.cls_convs) == len(head.reg_convs) == 2
    assert head.num_base_priors == retina_head.num_base_priors == 1 and head.embedding_size == 6
    assert head.retina_emb.out_channels == 6
    assert head.init_cfg == retina_head.init_cfg == init_cfg


RETINA_INIT_CFG = dict(type='Normal', layer='Conv2d', std=0.01,
                       override=dict(type='Normal', name='retina_cls', std=0.01, bias_prob=0.01))


@pytest.mark.parametrize('init_cfg', [RETINA_INIT_CFG, [RETINA_INIT_CFG],
                                      dict(RETINA_INIT_CFG, override=[RETINA_INIT_CFG['override']])])
def test_retinahead_init_cfg_is_refused_with_what_to_write(init_cfg):
    with pytest.raises(ValueError, match=r"overrides 'retina_cls'.*"
                                         r"override=dict\(type='Normal', name='retina_emb', std=0.01\)"):
        _head(init_cfg=init_cfg)


def test_the_suggested_init_cfg_initialises_the_embedding_conv():
    head = _head(init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                               override=dict(type='Normal', name='retina_emb', std=0.01)))
    assert head.retina_emb.bias.abs().sum() == 0  # no logit prior on the embeddings
    assert head.retina_emb.weight.std().item() == pytest.approx(0.01, rel=0.1)  # 1296 N(0, 0.01) draws


def test_training_without_ground_truth_instances():
    head = _head().train()
    with pytest.raises(ValueError, match='gt_instances'):
        head.loss(_feats(), [DetDataSample(metainfo=IMG_META)])


def test_score_channels_follow_retinanet_layout():
    # Anchor a at (h, w) whose embedding equals class c's mean scores p = 1 (clamped) at channel
    # a * C + c of that location; the other anchors point away from every mean.
    head = _head().eval()
    means = torch.eye(4, 6)
    head.means.copy_(means)
    embedding_map = torch.zeros(1, 3 * 6, 2, 3)
    embedding_map[:, :, :, :] = -torch.ones(6).repeat(3).view(1, 18, 1, 1)  # cos < 0 to every mean
    a, c, h, w = 2, 1, 1, 2
    embedding_map[0, a * 6:(a + 1) * 6, h, w] = means[c]
    scores = torch.sigmoid(head.embeddings_to_logits(embedding_map))
    assert scores[0, a * 4 + c, h, w].item() == pytest.approx(1 - 1e-5)
    others = scores.clone()
    others[0, a * 4 + c, h, w] = 0
    assert others.max() < 0.031


def test_half_precision_cosines_give_finite_fp32_logits():
    from mmext.ops.directional import modified_sigmoid_logit
    s = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.bfloat16)
    logits = modified_sigmoid_logit(s, torch.full((3,), 7.0), torch.full((3,), -0.5))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()  # computed in fp32 (issue 15)


# -- bad ground truth, channels and image sizes ------------------------------------------------------

def _summed_losses(head, samples, feats=None):
    losses = head.loss(_feats() if feats is None else feats, samples)
    return {name: sum(values) for name, values in losses.items()}


def _dlde_wrong_in_channels_loss():
    _head().loss(_feats(channels=16), _samples(_gt(ONE_BOX, [1])))


def _dlde_wrong_in_channels_predict():
    _head().eval().predict(_feats(channels=16), _samples(_gt(ONE_BOX, [1])))


CHANNEL_CASES = [
    (_dlde_wrong_in_channels_loss, ValueError, r'in_channels=8.*16-channel'),
    (_dlde_wrong_in_channels_predict, ValueError, r'in_channels=8.*16-channel'),
]


@pytest.mark.parametrize('case, error, match',
                         [pytest.param(*case, id=case[0].__name__.strip('_')) for case in CHANNEL_CASES])
def test_channel_mismatch(case, error, match):
    with pytest.raises(error, match=match):
        case()


def test_dlde_empty_ground_truth_gives_classification_loss_only():
    head = _head().train()
    losses = _summed_losses(head, _samples(_gt()))
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    assert losses['loss_bbox'] == 0
    assert head.means.abs().sum() == 0  # no positives: the means stay as they were


def test_dlde_batch_with_one_empty_image():
    head = _head().train()
    feats = tuple(torch.cat([f, f]) for f in _feats())
    losses = _summed_losses(head, _samples(_gt(), _gt(ONE_BOX, [2])), feats)
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    assert head.means[2].norm() == pytest.approx(1.0) and head.means[[0, 1, 3]].abs().sum() == 0


def test_dlde_empty_ground_truth_in_manual_mode_keeps_means_finite():
    head = _head(means_update='manual').train()
    head.means_hook_attached = True
    _summed_losses(head, _samples(_gt()))
    head.update_means_from_sums()
    assert torch.equal(head.means, torch.zeros_like(head.means))


@pytest.mark.parametrize('size', [(1, 1), (20, 13)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_dlde_on_an_image_smaller_than_its_strides(tiny_model, size):
    model, scope = tiny_model('dlde_tiny')
    meta = dict(img_shape=size, ori_shape=size, pad_shape=size, scale_factor=(1.0, 1.0))
    gt = InstanceData(bboxes=torch.tensor([[0.0, 0.0, size[1] / 2 + 0.5, size[0] / 2 + 0.5]]),
                      labels=torch.tensor([1]))
    with DefaultScope.overwrite_default_scope(scope):
        samples = [DetDataSample(metainfo=meta, gt_instances=gt)] * 2
        losses = model.train().loss(torch.rand(2, 3, *size), samples)
        with torch.no_grad():
            (result,) = model.eval().predict(torch.rand(1, 3, *size), [DetDataSample(metainfo=meta)])
    assert all(torch.isfinite(sum(v)) for v in losses.values())
    assert torch.isfinite(result.pred_instances.bboxes).all()


@pytest.mark.parametrize('box', [[10.0, 10.0, 10.0, 30.0], [10.0, 10.0, 30.0, 10.0],
                                 [10.0, 10.0, 10.0, 10.0]], ids=['zero-width', 'zero-height', 'point'])
def test_zero_area_box_counts_as_no_object(box):
    head = _head().train()
    losses = _summed_losses(head, _samples(_gt([box], [1])))
    empty = _summed_losses(_head().train(), _samples(_gt()))
    assert all(torch.isfinite(v) for v in losses.values())
    torch.testing.assert_close(losses, empty)
    assert head.means.abs().sum() == 0  # it pulled no class mean


def test_zero_area_box_beside_a_real_one():
    with_degenerate = _summed_losses(_head().train(),
                                     _samples(_gt([[5.0, 5.0, 5.0, 20.0], ONE_BOX], [3, 2])))
    alone = _summed_losses(_head().train(), _samples(_gt([ONE_BOX], [2])))
    torch.testing.assert_close(with_degenerate, alone)


# -- mixed precision ---------------------------------------------------------------------------------

@pytest.mark.parametrize('output', ['scores', 'loss'])
@pytest.mark.parametrize('dtype, max_error', [(torch.bfloat16, 2e-2), (torch.float16, 5e-2)])
def test_autocast_stays_close_to_fp32(dtype, max_error, output, device):
    """Scores and losses on 64x128 and 32x64 levels under autocast, the same weights: within
    ``max_error`` (relative) of fp32, outputs and gradients; measured on CPU 5.3e-3 / 2.1e-3 (bf16
    scores), 4.5e-4 / 2.2e-2 (fp16 scores), at most 5.9e-3 for the losses. Normalisation, cosines and
    the modified sigmoid run in fp32 (mmext.ops.precision). On CUDA the loss is mmdet's FocalLoss
    through mmcv's CUDA kernel."""
    head = _head().to(device)
    feats = (torch.rand(2, 8, 64, 128, device=device), torch.rand(2, 8, 32, 64, device=device))
    samples = [sample.to(device) for sample in _samples(_gt(*ONE_GT), _gt(*ONE_GT))]
    forward = {
        'scores': lambda module: torch.cat([level.flatten() for level in module(feats)[0]]),
        'loss': lambda module: sum(sum(values) for values in module.loss(feats, samples).values()),
    }[output]
    output_error, grad_error, finite = autocast_deviation(head, forward, dtype)
    assert finite and output_error < max_error and grad_error < max_error, (output_error, grad_error)
