"""Bad configs and inputs (issue 6): every case either raises an error that names the problem or gives
a finite, correct result.

Sections: channel mismatches, num_classes mismatch between config and dataset, empty ground truth,
all-ignore labels, NaN/Inf inputs, images smaller than kernels and strides, zero-area boxes, unknown
registry names, and crafted checkpoints that would run code.
"""
import copy
import os
import pickle
import re
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, load_checkpoint
from mmengine.structures import InstanceData, PixelData
from mmengine.testing import RunnerTestCase
from mmengine.testing.runner_test_case import ToyModel
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS as SEG_MODELS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS
from mmseg.structures import SegDataSample

import mmext  # noqa: F401  (registers the plugins and the checkpoint allow-list, as custom_imports does)
from mmext.det.heads import DLDEHead
from mmext.ops import intersect_encode, iou_encode
from mmext.ops.boundary_iou import boundary_intersect_and_union, class_boundary_iou
from mmext.engine.checkpoint import UnsafeCheckpointError
from mmext.seg.heads import ObjectContextHead, PointRendHead
from mmext.seg.hooks import SegClassCheckHook
from mmext.seg.losses import Net2VecLoss

ROOT = Path(__file__).resolve().parents[1]
SEG_CLASSES = 6  # background + 5 shapes: SyntheticShapesDataset
DET_CLASSES = 5  # SyntheticShapesCocoDataset
NAN, INF = float('nan'), float('inf')

POINT_TRAIN_CFG = ConfigDict(num_points=64, oversample_ratio=3, importance_sample_ratio=0.75)
POINT_TEST_CFG = ConfigDict(subdivision_steps=2, subdivision_num_points=8192, scale_factor=2)
IMG_META = dict(img_shape=(64, 64), pad_shape=(64, 64), scale_factor=(1.0, 1.0))
DLDE_TRAIN_CFG = ConfigDict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                  ignore_iof_thr=-1),
    sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)
DLDE_TEST_CFG = ConfigDict(nms_pre=1000, min_bbox_size=0, score_thr=0.0,
                           nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
ONE_BOX = [10.0, 12.0, 42.0, 40.0]


# -- builders -----------------------------------------------------------------------------------------

def _seg_head(cls, **kwargs):
    torch.manual_seed(0)
    # A Runner built by another test leaves its scope current; losses must come from mmseg's registry.
    with DefaultScope.overwrite_default_scope('mmseg'):
        return cls(**kwargs)


def _ocr_head(**kwargs):
    return _seg_head(ObjectContextHead, **dict(dict(in_channels=8, channels=4, num_classes=3,
                                                    ocr_channels=8, dropout_ratio=-1), **kwargs))


def _point_head(**kwargs):
    return _seg_head(PointRendHead, **dict(dict(in_channels=[8], in_index=[0], channels=16, num_classes=3,
                                                dropout_ratio=-1), **kwargs))


def _dlde_head(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_classes=4, in_channels=8, feat_channels=8, stacked_convs=1, embedding_size=6,
               anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                     ratios=[0.5, 1.0, 2.0], strides=[8, 16]),
               loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0), train_cfg=DLDE_TRAIN_CFG,
               test_cfg=DLDE_TEST_CFG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = DLDEHead(**dict(cfg, **kwargs))
    head.init_weights()
    return head


def _dlde_feats(channels=8):
    torch.manual_seed(1)
    return (torch.rand(1, channels, 8, 8), torch.rand(1, channels, 4, 4))


def _det_samples(*boxes_and_labels):
    samples = []
    for boxes, labels in boxes_and_labels:
        gt = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                          labels=torch.tensor(labels, dtype=torch.long))
        samples.append(DetDataSample(gt_instances=gt, metainfo=IMG_META))
    return samples


def _seg_samples(labels):
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]


def _dlde_losses(head, samples, feats=None):
    losses = head.loss(_dlde_feats() if feats is None else feats, samples)
    return {name: sum(values) for name, values in losses.items()}


def _tiny_model(name):
    cfg = Config.fromfile(ROOT / 'tests/configs' / f'{name}.py')
    scope, registry = ('mmdet', DET_MODELS) if name.startswith('dlde') else ('mmseg', SEG_MODELS)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model), scope


def _runner(config, data_root, work_dir, options=None, runtime=None):
    """A Runner of a tests/configs tiny config on ``data_root``, with ``options`` merged in.

    ``runtime`` replaces the config's custom_hooks by those of a configs/_base_ runtime, so that the
    hooks under test are exactly the ones every mmext config gets.
    """
    cfg = Config.fromfile(ROOT / 'tests/configs' / f'{config}.py')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(data_root)
    for split in ('val', 'test'):  # COCO-style evaluators read their own annotation file
        if 'ann_file' in cfg[f'{split}_evaluator']:
            cfg[f'{split}_evaluator'].ann_file = f'{data_root}/annotations/instances_val.json'
    if runtime is not None:
        cfg.custom_hooks = Config.fromfile(ROOT / 'configs/_base_' / f'{runtime}.py').custom_hooks
    cfg.merge_from_dict(dict(options or {}, work_dir=str(work_dir),
                             experiment_name=f'bad_inputs_{uuid.uuid4().hex}'))
    return Runner.from_cfg(cfg)


def _all_finite(module):
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


# -- 1. channel and stage mismatches ------------------------------------------------------------------------

def _ocr_wrong_in_channels():
    _ocr_head(in_channels=8)([torch.randn(2, 6, 5, 5)], torch.randn(2, 3, 5, 5))


def _ocr_wrong_resize_concat_channels():
    head = _ocr_head(in_channels=[4, 4], in_index=[0, 1], input_transform='resize_concat')
    head([torch.randn(2, 4, 5, 5), torch.randn(2, 6, 3, 3)], torch.randn(2, 3, 5, 5))


def _ocr_no_first_stage():
    _ocr_head().loss([torch.randn(2, 8, 5, 5)], _seg_samples(torch.zeros(2, 5, 5, dtype=torch.long)))


def _point_wrong_fine_channels():
    _point_head().predict([torch.randn(2, 6, 5, 5)], torch.randn(2, 3, 5, 5), [dict(img_shape=(5, 5))] * 2,
                          POINT_TEST_CFG)


def _point_wrong_coarse_channels():
    _point_head().loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 4, 5, 5),
                       _seg_samples(torch.zeros(2, 5, 5, dtype=torch.long)), POINT_TRAIN_CFG)


def _dlde_wrong_in_channels_loss():
    _dlde_head().loss(_dlde_feats(channels=16), _det_samples((ONE_BOX, [1])))


def _dlde_wrong_in_channels_predict():
    _dlde_head().eval().predict(_dlde_feats(channels=16), _det_samples((ONE_BOX, [1])))


def _net2vec_label_beyond_logit_channels():
    Net2VecLoss()(torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), 5))


def _net2vec_label_size_differs():
    Net2VecLoss()(torch.randn(2, 3, 4, 4), torch.zeros(2, 1, 4, dtype=torch.long))


def _net2vec_logits_without_class_axis():
    Net2VecLoss()(torch.randn(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))


CHANNEL_CASES = [
    (_ocr_wrong_in_channels, ValueError, r'in_channels=8.*has 6 channels'),
    (_ocr_wrong_resize_concat_channels, ValueError, r'in_channels=8.*has 10 channels'),
    (_ocr_no_first_stage, TypeError, r'CascadeEncoderDecoder'),
    (_point_wrong_fine_channels, ValueError, r'in_channels=\[8\].*has \[6\] channels'),
    (_point_wrong_coarse_channels, ValueError, r'decode_head\[0\] have 4 channels, but num_classes=3'),
    (_dlde_wrong_in_channels_loss, ValueError, r'in_channels=8.*16-channel'),
    (_dlde_wrong_in_channels_predict, ValueError, r'in_channels=8.*16-channel'),
    (_net2vec_label_beyond_logit_channels, ValueError, r'(?i)label.*\b5\b.*\b3\b'),
    (_net2vec_label_size_differs, ValueError, r'(?i)shape'),
    (_net2vec_logits_without_class_axis, ValueError, r'(?i)\(N, C, H, W\)|4-D|dims'),
]


@pytest.mark.parametrize('case, error, match',
                         [pytest.param(*case, id=case[0].__name__.strip('_')) for case in CHANNEL_CASES])
def test_channel_mismatch(case, error, match):
    with pytest.raises(error, match=match):
        case()


# -- 2. num_classes of the config vs the dataset -----------------------------------------------------

@pytest.mark.parametrize('options, match', [
    ({'model.decode_head.0.num_classes': 4, 'model.decode_head.1.num_classes': 4},
     r'model\.decode_head\.0\.num_classes=4, but the train dataset .* has 6 classes'),
    ({'model.decode_head.0.num_classes': 5}, r'model\.decode_head\.0\.num_classes=5, but the train'),
], ids=['both-heads', 'first-stage-only'])
def test_seg_num_classes_mismatch_refused_before_training(data_root, tmp_path, options, match):
    runner = _runner('ocr_tiny', data_root, tmp_path, options, runtime='seg_runtime')
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state  # no step was taken


@pytest.mark.parametrize('mode', ['val', 'test'])
def test_seg_num_classes_mismatch_refused_before_evaluation(data_root, tmp_path, mode):
    runner = _runner('pointrend_tiny', data_root, tmp_path,
                     {'model.decode_head.0.num_classes': 7, 'model.decode_head.1.num_classes': 7},
                     runtime='seg_runtime')
    with pytest.raises(ValueError, match=rf'num_classes=7, but the {mode} dataset .* has 6 classes'):
        getattr(runner, mode)()


def _fcn_runner(num_classes):
    """A runner stand-in whose model is one mmseg decode head."""
    model = torch.nn.Module()
    model.decode_head = _seg_head(FCNHead, in_channels=3, channels=2, num_classes=num_classes)
    return SimpleNamespace(model=model)


def test_seg_label_beyond_num_classes_refused_at_the_batch():
    batch = dict(inputs=[], data_samples=_seg_samples(torch.tensor([[[0, 4], [255, 1]]])))
    with pytest.raises(ValueError, match=r'label 4 .*num_classes=4'):
        SegClassCheckHook().before_train_iter(_fcn_runner(num_classes=4), 0, batch)


@pytest.mark.parametrize('mode', ['train', 'val', 'test'])
def test_det_num_classes_mismatch_refused(data_root, tmp_path, mode):
    runner = _runner('dlde_tiny', data_root, tmp_path,
                     {'model.bbox_head.num_classes': 3, 'model.bbox_head.means_update': 'batch'},
                     runtime='det_runtime')
    with pytest.raises(AssertionError, match=r'num_classes.*\b3\b.*\b5\b'):  # mmdet's check
        getattr(runner, mode)()


# -- 3. empty ground truth ----------------------------------------------------------------------------

def test_dlde_empty_ground_truth_gives_classification_loss_only():
    head = _dlde_head().train()
    losses = _dlde_losses(head, _det_samples(([], [])))
    assert torch.isfinite(losses['loss_cls']) and losses['loss_cls'] > 0
    assert losses['loss_bbox'] == 0
    assert head.means.abs().sum() == 0  # no positives: the means stay as they were


def test_dlde_batch_with_one_empty_image():
    head = _dlde_head().train()
    feats = tuple(torch.cat([f, f]) for f in _dlde_feats())
    losses = _dlde_losses(head, _det_samples(([], []), (ONE_BOX, [2])), feats)
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    assert head.means[2].norm() == pytest.approx(1.0) and head.means[[0, 1, 3]].abs().sum() == 0


def test_dlde_empty_ground_truth_in_manual_mode_keeps_means_finite():
    head = _dlde_head(means_update='manual').train()
    head.means_hook_attached = True
    _dlde_losses(head, _det_samples(([], [])))
    head.update_means_from_sums()
    assert torch.equal(head.means, torch.zeros_like(head.means))


def test_point_rend_all_background_labels():
    # Zero point MLP output weights give logits = bias, so the point CE has the closed form
    # log(sum_k exp(b_k)) - b_0 for labels that are all 0.
    head = _point_head()
    bias = torch.tensor([0.5, -1.0, 2.0])
    with torch.no_grad():
        head.fc_seg.weight.zero_()
        head.fc_seg.bias.copy_(bias)
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       _seg_samples(torch.zeros(2, 9, 9, dtype=torch.long)), POINT_TRAIN_CFG)
    torch.testing.assert_close(losses['pointloss_ce'], torch.logsumexp(bias, 0) - bias[0])


def test_encoders_of_an_empty_mask():
    empty = torch.zeros(2, 1, 6, 7)
    iou = iou_encode(empty, kernel_size=(3, 2), smooth=1e-7)
    torch.testing.assert_close(iou, torch.full_like(iou, 1e-7 / (6 + 1e-7)))
    assert torch.equal(intersect_encode(empty, kernel_size=3, normalize_by='target'), torch.zeros_like(empty))


def test_boundary_iou_class_absent_from_both_is_left_out_of_the_mean():
    label = torch.zeros(12, 12, dtype=torch.long)
    label[3:9, 3:9] = 1
    intersect, union = boundary_intersect_and_union(label, label, num_classes=3, width=1)
    biou = class_boundary_iou(intersect, union)
    assert union[2] == 0 and biou[2].isnan()  # class 2 appears nowhere: no score, not a zero
    assert torch.nanmean(biou).item() == 1.0


# -- 4. all-ignore labels -----------------------------------------------------------------------------

def _grads(module):
    return [p.grad for p in module.parameters() if p.grad is not None]


@pytest.mark.parametrize('loss_decode', [dict(type='CrossEntropyLoss'),
                                         dict(type='CrossEntropyLoss', avg_non_ignore=True)],
                         ids=['avg-all', 'avg-non-ignore'])
def test_ocr_all_ignore_labels_give_zero_loss_and_zero_gradient(loss_decode):
    head = _ocr_head(loss_decode=loss_decode)
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       _seg_samples(torch.full((2, 20, 20), 255)), None)
    assert losses['loss_ce'].item() == 0.0
    losses['loss_ce'].backward()
    assert all(g.abs().max() == 0 for g in _grads(head))


def test_point_rend_all_ignore_labels_give_zero_loss_and_zero_gradient():
    head = _point_head()
    losses = head.loss([torch.randn(2, 8, 5, 5)], torch.randn(2, 3, 5, 5),
                       _seg_samples(torch.full((2, 9, 9), 255)), POINT_TRAIN_CFG)
    assert losses['pointloss_ce'].item() == 0.0
    losses['pointloss_ce'].backward()
    assert all(g.abs().max() == 0 for g in _grads(head))


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


def test_boundary_iou_of_all_ignored_pixels_judges_nothing():
    pred = torch.randint(0, 3, (10, 10))
    intersect, union = boundary_intersect_and_union(pred, torch.full((10, 10), 255), 3, width=2)
    assert intersect.sum() == 0 and union.sum() == 0


def test_class_check_hook_accepts_all_ignore_batch():
    batch = dict(inputs=[], data_samples=_seg_samples(torch.full((2, 4, 4), 255)))
    SegClassCheckHook().before_train_iter(_fcn_runner(num_classes=3), 0, batch)


# -- 5. NaN / Inf -------------------------------------------------------------------------------------

class PoisonImage:
    """A pipeline step that turns the image into float32 and puts ``value`` in one pixel."""

    def __init__(self, value):
        self.value = value

    def __call__(self, results):
        img = results['img'].astype(np.float32)
        img[0, 0, 0] = self.value
        results['img'] = img
        return results


class PoisonBox:
    """A pipeline step that puts ``value`` in the first ground-truth box."""

    def __init__(self, value):
        self.value = value

    def __call__(self, results):
        boxes = results['gt_bboxes']
        getattr(boxes, 'tensor', boxes)[0, 0] = self.value
        return results


@pytest.fixture
def poison_transforms():
    """PoisonImage / PoisonBox registered for the length of one test (as RunnerTestCase does)."""
    names = {SEG_TRANSFORMS: PoisonImage, DET_TRANSFORMS: PoisonBox}
    for registry, cls in names.items():
        registry.register_module(module=cls, force=True)
    yield
    for registry, cls in names.items():
        registry._module_dict.pop(cls.__name__)


def _train_pipeline_with(cfg_name, step):
    cfg = Config.fromfile(ROOT / 'tests/configs' / f'{cfg_name}.py')
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    pipeline.insert(-1, step)  # just before the packing step
    return pipeline


@pytest.mark.parametrize('value', [NAN, INF], ids=['nan', 'inf'])
def test_non_finite_image_stops_training_before_the_weights(data_root, tmp_path, poison_transforms, value):
    pipeline = _train_pipeline_with('ocr_tiny', dict(type='PoisonImage', value=value))
    runner = _runner('ocr_tiny', data_root, tmp_path, {'train_dataloader.dataset.pipeline': pipeline},
                     runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input of .*img_dir/train/.*\.png'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_zero_std_in_the_data_preprocessor_is_refused(data_root, tmp_path):
    runner = _runner('ocr_tiny', data_root, tmp_path, {'model.data_preprocessor.std': [58.4, 0.0, 57.4]},
                     runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input.*std of 0'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_non_finite_image_is_refused_at_test_time(data_root, tmp_path, poison_transforms):
    pipeline = _train_pipeline_with('ocr_tiny', dict(type='PoisonImage', value=NAN))
    runner = _runner('ocr_tiny', data_root, tmp_path, {'test_dataloader.dataset.pipeline': pipeline},
                     runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input of .*img_dir/val/'):
        runner.test()


def test_non_finite_box_stops_training_before_the_weights(data_root, tmp_path, poison_transforms):
    pipeline = _train_pipeline_with('dlde_tiny', dict(type='PoisonBox', value=NAN))
    runner = _runner('dlde_tiny', data_root, tmp_path,
                     {'train_dataloader.dataset.pipeline': pipeline, 'model.bbox_head.means_update': 'batch'},
                     runtime='det_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the ground-truth boxes of .*img_dir/train/'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_nan_loss_from_finite_inputs_stops_before_the_backward(data_root, tmp_path):
    runner = _runner('ocr_tiny', data_root, tmp_path, {'model.decode_head.1.loss_decode.loss_weight': NAN},
                     runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'decode_1\.loss_ce = nan at iteration 1'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


@pytest.mark.parametrize('box', [[10.0, NAN, 42.0, 40.0], [10.0, 12.0, INF, 40.0]], ids=['nan', 'inf'])
def test_dlde_non_finite_box_is_refused_by_the_head(box):
    with pytest.raises(ValueError, match='NaN or Inf in the ground-truth boxes'):
        _dlde_head().train().loss(_dlde_feats(), _det_samples(([box], [1])))


@pytest.mark.parametrize('config', [
    'ocr_r50.py', 'pointrend_r50.py', 'retinanet_r50.py', 'dlde_retinanet_r50.py',
    'ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'dlde/dlde_retinanet_r50_fpn_1x_coco.py'])
def test_every_mmext_config_checks_for_non_finite_values(config):
    hooks = Config.fromfile(ROOT / 'configs' / config).custom_hooks
    assert 'FiniteCheckHook' in [hook['type'] for hook in hooks]


def test_finite_run_passes_the_checks(data_root, tmp_path):
    runner = _runner('ocr_tiny', data_root, tmp_path,
                     {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10}, runtime='seg_runtime')
    runner.train()
    assert runner.iter == 1 and _all_finite(runner.model)
    assert not runner.model.data_preprocessor._forward_hooks  # removed after the run


# -- 6. images smaller than kernels and strides -------------------------------------------------------

@pytest.mark.parametrize('config', ['ocr_tiny', 'pointrend_tiny'])
@pytest.mark.parametrize('size', [(1, 1), (3, 5), (17, 9)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_seg_prediction_of_a_tiny_image(config, size):
    model, _ = _tiny_model(config)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
    with torch.no_grad():
        (result,) = model.eval().predict(torch.rand(1, 3, *size), [sample])
    logits = result.seg_logits.data
    assert logits.shape == (SEG_CLASSES, *size) and torch.isfinite(logits).all()


@pytest.mark.parametrize('config', ['ocr_tiny', 'pointrend_tiny'])
def test_seg_training_on_1x1_images(config):
    model, _ = _tiny_model(config)
    samples = [SegDataSample(metainfo=dict(img_shape=(1, 1), ori_shape=(1, 1), pad_shape=(1, 1)),
                             gt_sem_seg=PixelData(data=torch.tensor([[[c]]]))) for c in (1, 4)]
    losses = model.train().loss(torch.rand(2, 3, 1, 1), samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)


@pytest.mark.parametrize('size', [(1, 1), (20, 13)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_dlde_on_an_image_smaller_than_its_strides(size):
    model, scope = _tiny_model('dlde_tiny')
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


@pytest.mark.parametrize('scale_factor', [0, -2])
def test_point_rend_non_positive_scale_factor(scale_factor):
    with pytest.raises(ValueError, match=rf'test_cfg\.scale_factor must be > 0, got {scale_factor}'):
        _point_head().predict([torch.randn(1, 8, 3, 3)], torch.randn(1, 3, 3, 3), [dict(img_shape=(3, 3))],
                              dict(POINT_TEST_CFG, scale_factor=scale_factor))


def test_iou_encoding_of_a_mask_smaller_than_the_kernel():
    with pytest.raises(ValueError, match=r'smaller than the kernel \(5, 3\)'):
        iou_encode(torch.ones(1, 1, 4, 8), kernel_size=(5, 3))


def test_boundary_band_wider_than_the_image():
    label = torch.zeros(4, 5, dtype=torch.long)
    label[1:3, 1:4] = 1
    intersect, union = boundary_intersect_and_union(label.flip(1), label, num_classes=2, width=9)
    biou = class_boundary_iou(intersect, union)
    assert ((biou >= 0) & (biou <= 1)).all()


# -- 7. zero-area boxes (DLDE) ------------------------------------------------------------------------

@pytest.mark.parametrize('box', [[10.0, 10.0, 10.0, 30.0], [10.0, 10.0, 30.0, 10.0],
                                 [10.0, 10.0, 10.0, 10.0]], ids=['zero-width', 'zero-height', 'point'])
def test_zero_area_box_counts_as_no_object(box):
    head = _dlde_head().train()
    losses = _dlde_losses(head, _det_samples(([box], [1])))
    empty = _dlde_losses(_dlde_head().train(), _det_samples(([], [])))
    assert all(torch.isfinite(v) for v in losses.values())
    torch.testing.assert_close(losses, empty)
    assert head.means.abs().sum() == 0  # it pulled no class mean


def test_zero_area_box_beside_a_real_one():
    with_degenerate = _dlde_losses(_dlde_head().train(),
                                   _det_samples(([[5.0, 5.0, 5.0, 20.0], ONE_BOX], [3, 2])))
    alone = _dlde_losses(_dlde_head().train(), _det_samples(([ONE_BOX], [2])))
    torch.testing.assert_close(with_degenerate, alone)


@pytest.mark.parametrize('boxes, labels, match', [
    ([[30.0, 12.0, 10.0, 40.0]], [1], r'x2 < x1 or y2 < y1.*not \(x, y, w, h\)'),
    ([ONE_BOX], [4], r'labels span 4\.\.4, but num_classes=4 allows 0\.\.3'),
    ([ONE_BOX], [-1], r'labels span -1\.\.-1, but num_classes=4'),
], ids=['inverted-box', 'label-at-num-classes', 'negative-label'])
def test_dlde_malformed_ground_truth(boxes, labels, match):
    with pytest.raises(ValueError, match=match):
        _dlde_head().train().loss(_dlde_feats(), _det_samples((boxes, labels)))


# -- 8. unknown registry names (through mmext's configs) ---------------------------------------------

@pytest.mark.parametrize('config, options, error, match', [
    ('ocr_tiny', {'model.decode_head.1.type': 'NoSuchHead'}, KeyError,
     'NoSuchHead is not in the mmseg::model registry'),
    ('ocr_tiny', {'model.decode_head.1.loss_decode': dict(type='NoSuchLoss')}, KeyError,
     'NoSuchLoss is not in the mmseg::model registry'),
    ('pointrend_tiny', {'model.neck.type': 'NoSuchNeck'}, KeyError, 'NoSuchNeck is not in the mmseg::model'),
    ('ocr_tiny', {'custom_hooks': [dict(type='NoSuchHook')]}, KeyError,
     'NoSuchHook is not in the mmseg::hook registry'),
    ('dlde_tiny', {'model.bbox_head.type': 'NoSuchHead'}, KeyError,
     'NoSuchHead is not in the mmdet::model registry'),
    ('dlde_tiny', {'custom_hooks': [dict(type='NoSuchHook')]}, KeyError,
     'NoSuchHook is not in the mmdet::hook registry'),
    ('ocr_tiny', {'model.decode_head.1.ocr_chanels': 8}, TypeError,
     "unexpected keyword argument 'ocr_chanels'"),
], ids=['seg-head', 'seg-loss', 'seg-neck', 'seg-hook', 'det-head', 'det-hook', 'misspelt-argument'])
def test_unknown_name_in_a_config_is_named(data_root, tmp_path, config, options, error, match):
    with pytest.raises(error, match=match):
        _runner(config, data_root, tmp_path, options)


@pytest.mark.parametrize('config, options, run, match', [
    ('ocr_tiny', {'train_dataloader.dataset.type': 'NoSuchDataset'}, 'train',
     'NoSuchDataset is not in the mmseg::dataset registry'),
    ('ocr_tiny', {'val_evaluator': [dict(type='NoSuchMetric')]}, 'val',
     'NoSuchMetric is not in the mmseg::metric registry'),
    ('dlde_tiny', {'val_dataloader.dataset.pipeline': [dict(type='NoSuchTransform')]}, 'val',
     'NoSuchTransform is not in the mmdet::transform registry'),
], ids=['seg-dataset', 'seg-metric', 'det-transform'])
def test_unknown_name_built_lazily_is_named(data_root, tmp_path, config, options, run, match):
    runner = _runner(config, data_root, tmp_path, options)
    with pytest.raises(KeyError, match=match):
        getattr(runner, run)()


def test_missing_required_argument_is_named():
    cfg = Config.fromfile(ROOT / 'tests/configs/ocr_tiny.py')
    del cfg.model.decode_head[1]['ocr_channels']
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(TypeError, match="missing 1 required positional argument: 'ocr_channels'"):
        SEG_MODELS.build(cfg.model)


def test_missing_custom_import_is_named(tmp_path):
    config = tmp_path / 'bad_import.py'
    config.write_text(f"_base_ = '{ROOT / 'configs/ocr_r50.py'}'\n"
                      "custom_imports = dict(imports=['mmext', 'mmext_no_such_plugin'], "
                      'allow_failed_imports=False)\n')
    with pytest.raises(ImportError, match='mmext_no_such_plugin') as excinfo:
        Config.fromfile(config)
    chain, error = [], excinfo.value
    while error is not None:  # mmengine re-raises inside ``except``: the real error is the context
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert "No module named 'mmext_no_such_plugin'" in chain


# -- 9. checkpoints that would run code ---------------------------------------------------------------

class _Reduce:
    """Unpickles as ``func(*args)``: the classic code-running pickle."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write_marker(marker):
    return f'open({str(marker)!r}, "w").write("pwned")'


PAYLOADS = {
    'exec': (lambda m: _Reduce(exec, (_write_marker(m), )), r'builtins\.exec'),
    'eval': (lambda m: _Reduce(eval, (_write_marker(m), )), r'builtins\.eval'),
    'os.system': (lambda m: _Reduce(os.system, (f'touch {m}', )), r'posix\.system'),
    'subprocess.Popen': (lambda m: _Reduce(subprocess.Popen, (['touch', str(m)], )), r'Popen'),
}
FORMATS = ('zip', 'legacy', 'raw-pickle')


def _evil_checkpoint(path, payload, fmt):
    """A checkpoint-shaped dict whose ``meta`` runs ``payload`` when unpickled, saved as ``fmt``."""
    checkpoint = {'state_dict': ToyModel().state_dict(), 'meta': {'note': payload}}
    if fmt == 'raw-pickle':
        with open(path, 'wb') as f:
            pickle.dump(checkpoint, f)
    else:
        torch.save(checkpoint, path, _use_new_zipfile_serialization=fmt == 'zip')
    return str(path)


@pytest.fixture
def toy_runner():
    """Builds mmengine's toy runner on first use (RunnerTestCase's set-up), cleaned up after."""
    case, runners = RunnerTestCase(), []
    case.setUp()

    def build():
        runners.append(case.build_runner(copy.deepcopy(case.epoch_based_cfg)))
        return runners[-1]

    yield build
    case.tearDown()


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('payload', list(PAYLOADS))
def test_code_running_checkpoint_is_refused(tmp_path, payload, fmt):
    marker = tmp_path / 'marker'
    make, name = PAYLOADS[payload]
    path = _evil_checkpoint(tmp_path / 'evil.pth', make(marker), fmt)
    with pytest.raises(UnsafeCheckpointError, match='Refused to load checkpoint') as excinfo:
        load_checkpoint(ToyModel(), path, map_location='cpu')
    assert not marker.exists()  # the code did not run
    if fmt != 'raw-pickle':  # pickle protocol 4 framing stops torch before it names a global
        message = str(excinfo.value)
        assert re.search(name, message) and 'almost certainly malicious' in message, message


LOADERS = {
    '_load_checkpoint': lambda runner, path: _load_checkpoint(path, map_location='cpu'),
    'CheckpointLoader': lambda runner, path: CheckpointLoader.load_checkpoint(path),
    'runner.load_checkpoint': lambda runner, path: runner().load_checkpoint(path),
    'runner.resume': lambda runner, path: runner().resume(path),
}


@pytest.mark.parametrize('loader', list(LOADERS))
def test_code_running_checkpoint_is_refused_by_every_loader(tmp_path, toy_runner, loader):
    marker = tmp_path / 'marker'
    path = _evil_checkpoint(tmp_path / 'evil.pth', PAYLOADS['exec'][0](marker), 'zip')
    with pytest.raises(UnsafeCheckpointError, match=r'it needs builtins\.exec.*almost certainly malicious'):
        LOADERS[loader](toy_runner, path)
    assert not marker.exists()


@pytest.mark.parametrize('payload', list(PAYLOADS))
def test_payload_would_run_without_the_allow_list(tmp_path, payload):
    """The refusals above matter: the plain unpickler runs every payload."""
    marker = tmp_path / 'marker'
    path = _evil_checkpoint(tmp_path / 'evil.pth', PAYLOADS[payload][0](marker), 'raw-pickle')
    with open(path, 'rb') as f:
        loaded = pickle.load(f)
    if isinstance(loaded['meta']['note'], subprocess.Popen):
        loaded['meta']['note'].wait()
    assert marker.exists()
