"""Configs: a stock mmseg config with custom_imports builds mmext's head; the full recipes build and
run one forward pass at full size with random weights (no data, no downloads)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from mmext.seg.heads import ObjectContextHead

ROOT = Path(__file__).resolve().parents[2]


def _build(cfg):
    register_all_modules()
    cfg.model.pretrained = None
    return revert_sync_batchnorm(MODELS.build(cfg.model)).eval()


def test_stock_mmseg_config_with_custom_imports_builds_mmext_head(tmp_path):
    config = tmp_path / 'stock_ocrnet.py'
    config.write_text(
        "_base_ = 'mmseg::ocrnet/ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py'\n"
        "custom_imports = dict(imports=['mmext'], allow_failed_imports=False)\n"
        "model = dict(decode_head=[dict(h, type='ObjectContextHead') if h.type == 'OCRHead' else h\n"
        '                          for h in _base_.model.decode_head])\n')
    model = _build(Config.fromfile(config))
    assert isinstance(model.decode_head[1], ObjectContextHead)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64), mode='tensor').shape == (1, 19, 16, 16)


@pytest.mark.parametrize('config, size, out', [
    ('ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', (512, 1024), (1, 19, 64, 128)),
    ('ocrnet/ocrnet_r101-d8_4xb2-40k_cityscapes-512x1024.py', (512, 1024), (1, 19, 64, 128)),
    ('ocrnet/ocrnet_hr18_4xb4-80k_ade20k-512x512.py', (512, 512), (1, 150, 128, 128)),
])
def test_full_recipe_forward_at_full_size(config, size, out):
    cfg = Config.fromfile(ROOT / 'configs' / config)
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'  # upstream settings are kept
    assert cfg.train_dataloader.dataset.type in ('CityscapesDataset', 'ADE20KDataset')
    model = _build(cfg)
    assert isinstance(model.decode_head[1], ObjectContextHead)
    with torch.no_grad():
        logits = model(torch.rand(1, 3, *size), mode='tensor')
    assert logits.shape == out and torch.isfinite(logits).all()
