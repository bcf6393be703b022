"""FiniteCheckHook: NaN or Inf in an image, a ground-truth box or a loss stops a run before an optimizer
step, naming the image or the loss; every mmext config adds the hook, and a finite run passes it.

Runs the tiny configs through a Runner with the hooks of configs/_base_/seg_runtime.py and det_runtime.py
(docs/robustness.md)."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmengine.config import Config
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

import mmext  # noqa: F401  (registers the plugins, as custom_imports does)

ROOT = Path(__file__).resolve().parents[2]
NAN, INF = float('nan'), float('inf')


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


def _all_finite(module):
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


@pytest.mark.parametrize('value', [NAN, INF], ids=['nan', 'inf'])
def test_non_finite_image_stops_training_before_the_weights(tiny_runner, poison_transforms, value):
    pipeline = _train_pipeline_with('ocr_tiny', dict(type='PoisonImage', value=value))
    runner = tiny_runner('ocr_tiny', {'train_dataloader.dataset.pipeline': pipeline}, runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input of .*img_dir/train/.*\.png'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_zero_std_in_the_data_preprocessor_is_refused(tiny_runner):
    runner = tiny_runner('ocr_tiny', {'model.data_preprocessor.std': [58.4, 0.0, 57.4]},
                         runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input.*std of 0'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_non_finite_image_is_refused_at_test_time(tiny_runner, poison_transforms):
    pipeline = _train_pipeline_with('ocr_tiny', dict(type='PoisonImage', value=NAN))
    runner = tiny_runner('ocr_tiny', {'test_dataloader.dataset.pipeline': pipeline}, runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the model input of .*img_dir/val/'):
        runner.test()


def test_non_finite_box_stops_training_before_the_weights(tiny_runner, poison_transforms):
    pipeline = _train_pipeline_with('dlde_tiny', dict(type='PoisonBox', value=NAN))
    runner = tiny_runner('dlde_tiny',
                         {'train_dataloader.dataset.pipeline': pipeline,
                          'model.bbox_head.means_update': 'batch'}, runtime='det_runtime')
    with pytest.raises(ValueError, match=r'NaN or Inf in the ground-truth boxes of .*img_dir/train/'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


def test_nan_loss_from_finite_inputs_stops_before_the_backward(tiny_runner):
    runner = tiny_runner('ocr_tiny', {'model.decode_head.1.loss_decode.loss_weight': NAN},
                         runtime='seg_runtime')
    with pytest.raises(ValueError, match=r'decode_1\.loss_ce = nan at iteration 1'):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state and _all_finite(runner.model)


@pytest.mark.parametrize('config', [
    'ocr_r50.py', 'pointrend_r50.py', 'retinanet_r50.py', 'dlde_retinanet_r50.py',
    'ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'dlde/dlde_retinanet_r50_fpn_1x_coco.py'])
def test_every_mmext_config_checks_for_non_finite_values(config):
    hooks = Config.fromfile(ROOT / 'configs' / config).custom_hooks
    assert 'FiniteCheckHook' in [hook['type'] for hook in hooks]


def test_finite_run_passes_the_checks(tiny_runner):
    runner = tiny_runner('ocr_tiny', {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10},
                         runtime='seg_runtime')
    runner.train()
    assert runner.iter == 1 and _all_finite(runner.model)
    assert not runner.model.data_preprocessor._forward_hooks  # removed after the run
