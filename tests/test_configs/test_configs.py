"""Configs: a stock mmseg config with custom_imports builds mmext's head; the full recipes build and
run one forward pass at full size with random weights (no data, no downloads)."""
from pathlib import Path

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmext.seg.heads import ObjectContextHead, PointRendHead

ROOT = Path(__file__).resolve().parents[2]


def _build(cfg):
    register_all_modules()
    cfg.model.pretrained = None
    return revert_sync_batchnorm(MODELS.build(cfg.model)).eval()


@pytest.mark.parametrize('stock, theirs, ours', [
    ('ocrnet/ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py', 'OCRHead', ObjectContextHead),
    ('point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py', 'PointHead', PointRendHead),
])
def test_stock_mmseg_config_with_custom_imports_builds_mmext_head(tmp_path, stock, theirs, ours):
    config = tmp_path / 'stock.py'
    config.write_text(
        f"_base_ = 'mmseg::{stock}'\n"
        "custom_imports = dict(imports=['mmext'], allow_failed_imports=False)\n"
        f"model = dict(decode_head=[dict(h, type='{ours.__name__}') if h.type == '{theirs}' else h\n"
        '                          for h in _base_.model.decode_head])\n')
    model = _build(Config.fromfile(config))
    assert isinstance(model.decode_head[1], ours)
    assert _predict(model, (64, 64)).shape == (1, 19, 64, 64)


def _predict(model, size):
    """Logits of the model's predict mode (whole image, the real inference path) for a random image."""
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
    with torch.no_grad():
        (result,) = model.predict(torch.rand(1, 3, *size), [sample])
    return result.seg_logits.data.unsqueeze(0)


@pytest.mark.parametrize('config, size, num_classes, head', [
    ('ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', (512, 1024), 19, ObjectContextHead),
    ('ocrnet/ocrnet_r101-d8_4xb2-40k_cityscapes-512x1024.py', (512, 1024), 19, ObjectContextHead),
    ('ocrnet/ocrnet_hr18_4xb4-80k_ade20k-512x512.py', (512, 512), 150, ObjectContextHead),
    ('point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py', (512, 1024), 19, PointRendHead),
    ('point_rend/pointrend_r101_4xb2-80k_cityscapes-512x1024.py', (512, 1024), 19, PointRendHead),
    ('point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py', (512, 512), 150, PointRendHead),
    ('point_rend/pointrend_r101_4xb4-160k_ade20k-512x512.py', (512, 512), 150, PointRendHead),
])
def test_full_recipe_forward_at_full_size(config, size, num_classes, head):
    cfg = Config.fromfile(ROOT / 'configs' / config)
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'  # upstream settings are kept
    assert cfg.train_dataloader.dataset.type in ('CityscapesDataset', 'ADE20KDataset')
    model = _build(cfg)
    assert isinstance(model.decode_head[1], head)
    assert all(h.num_classes == num_classes for h in model.decode_head)
    logits = _predict(model, size)
    assert logits.shape == (1, num_classes, *size) and torch.isfinite(logits).all()


def test_point_rend_recipes_fix_mmseg_subdivision_typo():
    cfg = Config.fromfile(ROOT / 'configs/point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py')
    assert cfg.model.test_cfg == dict(mode='whole', subdivision_steps=2, subdivision_num_points=8192,
                                      scale_factor=2)
    assert cfg.model.train_cfg == dict(num_points=2048, oversample_ratio=3, importance_sample_ratio=0.75)


MMSEG_HEAD_TYPES = {'PointRendHead': 'PointHead', 'ObjectContextHead': 'OCRHead'}


@pytest.mark.parametrize('config', [
    'point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py',
    'point_rend/pointrend_r101_4xb2-80k_cityscapes-512x1024.py',
    'point_rend/pointrend_r50_4xb4-160k_ade20k-512x512.py',
    'point_rend/pointrend_r101_4xb4-160k_ade20k-512x512.py',
    'ocrnet/ocrnet_r101-d8_4xb2-40k_cityscapes-512x1024.py',
    'ocrnet/ocrnet_hr18_4xb4-80k_ade20k-512x512.py',
])
def test_full_recipe_mirrors_mmseg(config, unscoped):
    # Everything that shapes training equals mmseg's recipe of the same name, except the head types
    # and mmseg's subdivision_num_points typo (8196 -> 8192).
    ours = Config.fromfile(ROOT / 'configs' / config)
    theirs = Config.fromfile(Path(mmseg.__file__).parent / '.mim/configs' / config)
    model = unscoped(ours.model.to_dict())
    for head in model['decode_head']:
        head['type'] = MMSEG_HEAD_TYPES.get(head['type'], head['type'])
    test_cfg = model['test_cfg']
    if 'subdivision_num_points' in test_cfg:
        assert test_cfg['subdivision_num_points'] == 8192
        assert theirs.model.test_cfg.subdivision_num_points == 8196
        test_cfg['subdivision_num_points'] = 8196
    assert model == unscoped(theirs.model.to_dict())
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert unscoped(ours[key]) == unscoped(theirs[key]), key
