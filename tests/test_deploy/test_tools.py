"""End to end on the tiny OCR and DLDE configs: tools/deploy/export.py writes the export directory,
tools/deploy/test.py reproduces tools/test.py's metrics on ONNX Runtime, tools/deploy/infer.py draws
overlays or boxes."""
import json
import re
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config

pytest.importorskip('onnxruntime')

from mmext.analysis.models import build_model, quiet_logs  # noqa: E402
from mmext.datasets import ensure_synthetic_shapes  # noqa: E402
from mmext.testing.tools import last_metrics, run_tool  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/configs/ocr_tiny.py'
DLDE_TINY = ROOT / 'tests/configs/dlde_tiny.py'


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
    log = run_tool('tools/deploy/export.py', TINY, checkpoint, '--out', tmp / 'export',
                   '--cfg-options', *options)
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


def test_deploy_test_tool_reproduces_pytorchlast_metrics(exported):
    tmp, checkpoint, options = exported
    pytorch = last_metrics(run_tool('tools/test.py', TINY, checkpoint, '--work-dir', tmp / 'work',
                                    '--cfg-options', *options))
    deployed = last_metrics(run_tool('tools/deploy/test.py', TINY, tmp / 'export', '--backend', 'onnxruntime',
                                     '--cfg-options', *options))
    assert deployed == pytest.approx(pytorch, abs=0.01)


def test_infer_tool_writes_one_overlay_per_image(exported):
    tmp, _, _ = exported
    images = sorted((tmp / 'data/img_dir/val').glob('*.png'))[:2]
    run_tool('tools/deploy/infer.py', tmp / 'export', *images, '--out', tmp / 'vis')
    for image in images:
        picture = cv2.imread(str(tmp / 'vis' / image.name))
        assert picture is not None and picture.shape == cv2.imread(str(image)).shape


def test_infer_tool_refuses_an_image_over_the_pixel_limit_by_its_header(exported, bilevel_png):
    """A 16 KB PNG of 9000 x 9000 pixels, refused with the reason and no traceback."""
    tmp, _, _ = exported
    image = tmp / 'large.png'
    image.write_bytes(bilevel_png(9000, 9000))
    log = run_tool('tools/deploy/infer.py', tmp / 'export', image, '--out', tmp / 'vis', check=False)
    assert f'infer.py: {image}: 9000 x 9000 = 81000000 pixels, over the limit of 67108864' in log
    assert 'Traceback' not in log and not (tmp / 'vis/large.png').exists()


@pytest.fixture(scope='module')
def exported_detector(tmp_path_factory, data_root, spread_scores):
    """A seeded random-weight DLDE tiny checkpoint (spread scores), its export directory and the
    options that point data and COCO annotations at ``data_root`` and keep boxes of score > 0.01."""
    tmp = tmp_path_factory.mktemp('deploy_tools_det')
    quiet_logs()
    torch.manual_seed(0)
    model = spread_scores(build_model(Config.fromfile(DLDE_TINY)))
    checkpoint = tmp / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    options = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    options += [f'{split}_evaluator.ann_file={data_root}/annotations/instances_val.json'
                for split in ('val', 'test')]
    options += ['model.test_cfg.score_thr=0.01']
    log = run_tool('tools/deploy/export.py', DLDE_TINY, checkpoint, '--out', tmp / 'export',
                   '--cfg-options', *options)
    assert 'end2end.onnx' in log
    return tmp, checkpoint, options


def _bbox_map(log):
    return float(re.findall(r'coco/bbox_mAP: ([0-9.]+)', log)[-1])


def test_detector_export_writes_its_outputs_and_postprocessing(exported_detector):
    tmp, _, _ = exported_detector
    spec = json.loads((tmp / 'export/deploy.json').read_text())
    assert spec['task'] == 'detection' and list(spec['outputs']) == ['boxes', 'scores', 'labels']
    assert spec['max_per_img'] == 100 and spec['test_cfg']['score_thr'] == 0.01
    assert 'rescale' in spec and len(spec['classes']) == 5


def test_deploy_test_tool_reproduces_pytorch_bbox_map(exported_detector, data_root):
    tmp, checkpoint, options = exported_detector
    pytorch = _bbox_map(run_tool('tools/test.py', DLDE_TINY, checkpoint, '--work-dir', tmp / 'work',
                                 '--cfg-options', *options))
    deployed = _bbox_map(run_tool('tools/deploy/test.py', DLDE_TINY, tmp / 'export', '--backend',
                                  'onnxruntime', '--cfg-options', *options))
    assert deployed == pytest.approx(pytorch, abs=0.05)


def test_infer_tool_draws_boxes(exported_detector, data_root):
    tmp, _, _ = exported_detector
    images = sorted((data_root / 'img_dir/val').glob('*.png'))[:2]
    run_tool('tools/deploy/infer.py', tmp / 'export', *images, '--out', tmp / 'vis')
    for image in images:
        picture, original = cv2.imread(str(tmp / 'vis' / image.name)), cv2.imread(str(image))
        assert picture.shape == original.shape and (picture != original).any()


def _resized_config(tmp, size):
    config = tmp / f'ocr_tiny_resized_{size}.py'
    config.write_text(f"_base_ = '{TINY}'\n" + f'''test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
''')
    return config


def test_a_test_time_resize_evaluates_at_pytorchs_metrics(exported):
    """A config whose test pipeline resizes (as every stock dataset config does, keep-ratio; here the
    64 px images to 96): the dynamic export predicts at 96 px and DeployedModel resizes the logits back
    to the original 64 px as mmseg's postprocess_result does, so tools/deploy/test.py gives
    tools/test.py's metrics. A static 64 px export takes images resized to 48 px, padded."""
    tmp, checkpoint, options = exported
    config = _resized_config(tmp, 96)
    pytorch = last_metrics(run_tool('tools/test.py', config, checkpoint, '--work-dir', tmp / 'work_resized',
                                    '--cfg-options', *options))
    run_tool('tools/deploy/export.py', config, checkpoint, '--out', tmp / 'dynamic', '--dynamic',
             '--cfg-options', *options)
    deployed = last_metrics(run_tool('tools/deploy/test.py', config, tmp / 'dynamic',
                                     '--cfg-options', *options))
    assert deployed == pytest.approx(pytorch, abs=0.01)
    padded = last_metrics(run_tool('tools/deploy/test.py', _resized_config(tmp, 48), tmp / 'export',
                                   '--cfg-options', *options))
    assert 0 <= padded['mIoU'] <= 100  # evaluates: the logits come back at the 64 px of the labels
