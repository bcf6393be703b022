"""End to end: an OCRNet backbone trained by tools/train.py, then probed frozen by a Net2Vec config
(tools/train.py, tools/test.py, the visualization), on tiny configs."""
import re
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import mmext  # noqa: F401  (mmengine checkpoints load under weights_only with its allow-list)
from mmext.testing.tools import run_tool

ROOT = Path(__file__).resolve().parents[2]
OCR = ROOT / 'tests/configs/ocr_tiny.py'
NET2VEC = ROOT / 'tests/configs/net2vec_tiny.py'


def _set_iou(log):
    return float(re.findall(r'IoU\.ring: ([0-9.]+)', log)[-1])


@pytest.fixture(scope='module')
def probed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('net2vec')
    data = [f'{split}_dataloader.dataset.data_root={tmp / "data"}' for split in ('train', 'val', 'test')]
    run_tool('tools/train.py', OCR, '--work-dir', tmp / 'ocr', '--cfg-options', *data)
    options = [*data, f'model.backbone.init_cfg.checkpoint={tmp / "ocr/iter_4.pth"}']
    log = run_tool('tools/train.py', NET2VEC, '--work-dir', tmp / 'probe', '--cfg-options', *options)
    return tmp, options, log


def test_the_probe_trains_only_its_head_on_the_loaded_frozen_backbone(probed):
    tmp, _, _ = probed
    ocr = _load_checkpoint(str(tmp / 'ocr/iter_4.pth'))['state_dict']
    probe = _load_checkpoint(str(tmp / 'probe/iter_4.pth'))['state_dict']
    backbone = [k for k in probe if k.startswith('backbone.')]
    assert backbone and all(torch.equal(probe[k], ocr[k]) for k in backbone)  # BN statistics too
    assert set(probe) - set(backbone) == {'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'}
    assert probe['decode_head.conv_seg.weight'].shape == (1, 64, 1, 1)


def test_test_tool_reproduces_the_set_iou(probed):
    tmp, options, log = probed
    tested = run_tool('tools/test.py', NET2VEC, tmp / 'probe/iter_4.pth', '--work-dir', tmp / 'test',
                      '--cfg-options', *options)
    assert 0 <= _set_iou(log) <= 100
    assert _set_iou(tested) == pytest.approx(_set_iou(log), abs=0.01)


def test_visualization_writes_one_row_per_image(probed):
    tmp, options, _ = probed
    out = tmp / 'net2vec.png'
    run_tool('tools/analysis/visualize_net2vec.py', NET2VEC, tmp / 'probe/iter_4.pth', '--indices', '0', '1',
             '--out', out, '--cfg-options', *options)
    image = cv2.imread(str(out))
    height, width, _ = image.shape  # five panels in 12.5 in, one row of 2.6 in per image
    assert width / height == pytest.approx(12.5 / (2 * 2.6), rel=0.02)


def test_a_missing_backbone_checkpoint_is_named(probed):
    tmp, options, _ = probed
    missing = tmp / 'no_such_ocr.pth'
    log = run_tool('tools/train.py', NET2VEC, '--work-dir', tmp / 'missing', '--cfg-options', *options[:3],
                   f'model.backbone.init_cfg.checkpoint={missing}', check=False)
    assert str(missing) in log and 'Traceback' in log
