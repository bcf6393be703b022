"""End to end on the tiny OCR config: tools/deploy/export.py writes the export directory,
tools/deploy/test.py reproduces tools/test.py's metrics on ONNX Runtime, tools/deploy/infer.py draws
overlays."""
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config

pytest.importorskip('onnxruntime')

from mmext.analysis.models import build_model, quiet_logs  # noqa: E402
from mmext.datasets import ensure_synthetic_shapes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/configs/ocr_tiny.py'


def _run(script, *args):
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _metrics(log):
    return {key: float(re.findall(rf'\b{key}: ([0-9.]+)', log)[-1]) for key in ('mIoU', 'mBIoU')}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A random-weight checkpoint of the tiny config, its export directory and the data options."""
    tmp = tmp_path_factory.mktemp('deploy_tools')
    quiet_logs()
    checkpoint = tmp / 'random.pth'
    torch.save(dict(state_dict=build_model(Config.fromfile(TINY)).state_dict(), meta={}), checkpoint)
    cfg = Config.fromfile(TINY)
    ensure_synthetic_shapes(tmp / 'data', **cfg.synthesis)
    options = [f'{split}_dataloader.dataset.data_root={tmp / "data"}' for split in ('train', 'val', 'test')]
    log = _run('tools/deploy/export.py', TINY, checkpoint, '--out', tmp / 'export', '--cfg-options', *options)
    assert 'end2end.onnx' in log
    return tmp, checkpoint, options


def test_export_tool_writes_the_onnx_file_and_deploy_json(exported):
    tmp, checkpoint, _ = exported
    spec = json.loads((tmp / 'export/deploy.json').read_text())
    assert (tmp / 'export/end2end.onnx').is_file()
    assert spec['task'] == 'segmentation' and spec['input']['shape'] == [1, 3, 64, 64]
    assert spec['normalization']['bgr_to_rgb'] and spec['checkpoint'] == str(checkpoint)
    assert spec['classes'][0] == 'background' and len(spec['palette']) == len(spec['classes'])
    assert list(spec['outputs']) == ['logits'] and spec['versions']['torch'] == torch.__version__


def test_deploy_test_tool_reproduces_pytorch_metrics(exported):
    tmp, checkpoint, options = exported
    pytorch = _metrics(_run('tools/test.py', TINY, checkpoint, '--work-dir', tmp / 'work',
                            '--cfg-options', *options))
    deployed = _metrics(_run('tools/deploy/test.py', TINY, tmp / 'export', '--backend', 'onnxruntime',
                             '--cfg-options', *options))
    assert deployed == pytest.approx(pytorch, abs=0.01)


def test_infer_tool_writes_one_overlay_per_image(exported):
    tmp, _, _ = exported
    images = sorted((tmp / 'data/img_dir/val').glob('*.png'))[:2]
    _run('tools/deploy/infer.py', tmp / 'export', *images, '--out', tmp / 'vis')
    for image in images:
        picture = cv2.imread(str(tmp / 'vis' / image.name))
        assert picture is not None and picture.shape == cv2.imread(str(image)).shape
