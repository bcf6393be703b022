"""Exported tiny models on ONNX Runtime and OpenVINO (fp32) against PyTorch ``predict`` on the same
images, random weights, static and dynamic: segmentation logits within 1e-4 and identical labels;
detections the same kept boxes in the same order (IoU > 0.999), scores within 1e-4, same labels.

Detection parity needs scores that no fp difference can reorder: near-equal scores may swap places
or NMS winners between backends, as they may between two PyTorch builds. The detectors get seeded
weights whose kept scores are at least 1e-5 apart (checked; the backends differ from PyTorch by
~1e-7), a score threshold of 0.01 so that random weights keep boxes, and max_per_img=20 (of 100
boxes some are 1e-6 apart).
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')

from mmext.analysis.models import build_model, quiet_logs  # noqa: E402
from mmext.deploy import DeployedModel, export_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ('onnxruntime', 'openvino')
# PointRend: 2048 points exceed the 32 x 32 map of the first subdivision step at 64 px, so the
# exported graph's padded point selection is exercised, not only its k = num_points case.
OPTIONS = dict(net2vec_tiny={'model.backbone.init_cfg': None},
               pointrend_tiny={'model.test_cfg.subdivision_num_points': 2048},
               dlde_tiny={'model.test_cfg.score_thr': 0.01, 'model.test_cfg.max_per_img': 20},
               retinanet_tiny={'model.test_cfg.score_thr': 0.01, 'model.test_cfg.max_per_img': 20})
MIN_SCORE_GAP = 1e-5


def tiny_config(name: str) -> Config:
    cfg = Config.fromfile(ROOT / 'tests/configs' / f'{name}.py')
    cfg.merge_from_dict(OPTIONS.get(name, {}))
    return cfg


def torch_predict(model, images):
    """mmseg's or mmdet's test step on (H, W, 3) uint8 BGR arrays."""
    if hasattr(model, 'bbox_head'):
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    inputs = [torch.from_numpy(image).permute(2, 0, 1).contiguous() for image in images]
    samples = [Sample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2],
                                    scale_factor=(1., 1.))) for image in images]
    with torch.no_grad():
        return model.test_step(dict(inputs=inputs, data_samples=samples))


def random_images(batch: int, height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(batch)]


@pytest.fixture(scope='module')
def exported(tmp_path_factory, spread_scores):
    """``exported(name, dynamic)``: (model, export dir), each exported once per module."""
    cache = {}

    def export(name, dynamic):
        if (name, dynamic) not in cache:
            quiet_logs()
            cfg = tiny_config(name)
            torch.manual_seed(0)
            model = build_model(cfg).eval()
            if hasattr(model, 'bbox_head'):
                spread_scores(model)
            out = tmp_path_factory.mktemp(f'{name}_{"dynamic" if dynamic else "static"}')
            export_model(model, cfg, out, dynamic=dynamic)
            cache[name, dynamic] = model, out
        return cache[name, dynamic]

    return export


def assert_same_segmentation(deployed, expected):
    for got, want in zip(deployed, expected):
        diff = (got.seg_logits.data - want.seg_logits.data).abs().max().item()
        assert diff <= 1e-4, f'seg_logits differ by {diff}'
        assert torch.equal(got.pred_sem_seg.data.long(), want.pred_sem_seg.data.long())


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['ocr_tiny', 'pointrend_tiny', 'net2vec_tiny'])
def test_static_segmentation_matches_pytorch(exported, name, backend):
    model, out = exported(name, dynamic=False)
    images = random_images(1, 64, 64)
    assert_same_segmentation(DeployedModel(out, backend).predict(images), torch_predict(model, images))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['ocr_tiny', 'pointrend_tiny', 'net2vec_tiny'])
def test_dynamic_segmentation_matches_pytorch_at_unseen_sizes_and_batch(exported, name, backend):
    model, out = exported(name, dynamic=True)  # exported with a batch of 3 at 64 x 64
    deployed = DeployedModel(out, backend)
    for height, width in [(96, 64), (80, 112)]:
        images = random_images(2, height, width, seed=height)
        assert_same_segmentation(deployed.predict(images), torch_predict(model, images))


def assert_same_detections(deployed, expected):
    from mmdet.structures.bbox import bbox_overlaps
    for got, want in zip(deployed, expected):
        got, want = got.pred_instances, want.pred_instances
        assert len(want) > 0 and len(got) == len(want), f'{len(got)} boxes kept, PyTorch {len(want)}'
        gaps = (want.scores[:-1] - want.scores[1:]).min().item() if len(want) > 1 else 1.0
        assert gaps >= MIN_SCORE_GAP, f'near-equal PyTorch scores ({gaps}): NMS may tie'
        assert torch.equal(got.labels.long(), want.labels)
        assert (got.scores - want.scores).abs().max().item() <= 1e-4
        assert bbox_overlaps(got.bboxes, want.bboxes, is_aligned=True).min().item() > 0.999


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['dlde_tiny', 'retinanet_tiny'])
def test_static_detection_matches_pytorch(exported, name, backend):
    model, out = exported(name, dynamic=False)
    images = random_images(1, 64, 64)
    assert_same_detections(DeployedModel(out, backend).predict(images), torch_predict(model, images))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['dlde_tiny', 'retinanet_tiny'])
def test_dynamic_detection_matches_pytorch_at_unseen_sizes_and_batch(exported, name, backend):
    model, out = exported(name, dynamic=True)  # exported with a batch of 3 at 129 x 129 (min_size)
    deployed = DeployedModel(out, backend)
    for height, width in [(160, 136), (200, 256)]:  # 136 and 200: padded to 32 inside the graph
        images = random_images(2, height, width, seed=height)
        assert_same_detections(deployed.predict(images), torch_predict(model, images))
