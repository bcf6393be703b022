"""The Net2Vec configs: the probe and its BCE baseline build on a frozen backbone, predict decoded
masks, and a stock mmseg config takes Net2VecHead through custom_imports."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmext.ops import intersect_decode
from mmext.seg.heads import Net2VecHead

ROOT = Path(__file__).resolve().parents[2]


def _build(config):
    register_all_modules()
    cfg = Config.fromfile(config)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('config, encoding, loss', [
    ('net2vec_r50.py', dict(kernel_size=8), 'Net2VecLoss'),
    ('net2vec_r50_bce.py', None, 'CrossEntropyLoss'),
])
def test_probe_configs(config, encoding, loss):
    cfg, model = _build(ROOT / 'configs' / config)
    head = model.decode_head
    assert isinstance(head, Net2VecHead) and head.encoding == encoding
    assert type(head.loss_decode).__name__ == loss
    assert cfg.model.backbone.init_cfg.checkpoint == 'work_dirs/ocr_r50/iter_640.pth'
    assert cfg.train_dataloader.dataset.concept == cfg.test_dataloader.dataset.concept == 'ring'
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())  # frozen, BN included
    assert all(not m.training for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ['decode_head.conv_seg.weight',
                                                                           'decode_head.conv_seg.bias']


def test_probe_prediction_is_the_decoded_output():
    torch.manual_seed(0)
    _, model = _build(ROOT / 'configs/net2vec_r50.py')
    model.eval()
    with torch.no_grad():  # probabilities about 0.82 inside, lower near the border: both sides of 0.8
        model.decode_head.conv_seg.bias.fill_(1.5)
    image = torch.rand(1, 3, 128, 128) * 255
    sample = SegDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128)))
    with torch.no_grad():
        inputs = model.data_preprocessor(dict(inputs=list(image)), False)['inputs']
        (result,) = model.predict(inputs, [sample])
        logits = torch.nn.functional.interpolate(model.decode_head(model.extract_feat(inputs)),
                                                 size=(128, 128), mode='bilinear', align_corners=False)
    decoded = intersect_decode(logits.sigmoid(), kernel_size=8)
    # For one channel mmseg stores sigmoid(logits) as seg_logits: here the decoded probabilities.
    torch.testing.assert_close(result.seg_logits.data, decoded[0], atol=1e-5, rtol=1e-4)
    # The config's threshold (0.8), not 0.5: the test compared with 0.5, which an untrained probe's
    # probabilities (about 0.5) exceeded under some random states, failing one full-suite run.
    threshold = model.decode_head.threshold
    assert threshold == 0.8
    expected = (decoded[0, 0] > threshold).long()
    assert 0 < expected.float().mean() < 1
    assert torch.equal(result.pred_sem_seg.data[0], expected)


def test_stock_mmseg_config_with_custom_imports_takes_net2vec_head(tmp_path):
    config = tmp_path / 'stock.py'
    config.write_text(
        "_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'\n"
        "custom_imports = dict(imports=['mmext'], allow_failed_imports=False)\n"
        "model = dict(pretrained=None, auxiliary_head=None, decode_head=dict(\n"
        "    _delete_=True, type='Net2VecHead', in_channels=2048, in_index=3, num_classes=19,\n"
        "    encoding=dict(kernel_size=(24, 48))))\n")
    cfg, model = _build(config)
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model).eval()
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
    with torch.no_grad():
        (result,) = model.predict(torch.rand(1, 3, 64, 64), [sample])
    assert result.seg_logits.data.shape == (19, 64, 64)  # one concept per class, argmax prediction
