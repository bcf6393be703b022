"""Reduced precision against fp32 on the tiny trained-like models and the tiny dataset's validation images:
int8 exports (tools/deploy/quantize.py, mmext.deploy.quantize) and OpenVINO bf16. Bounds on label
agreement and kept boxes, never exact equality; the steps of FLOAT_SCOPES stay in floating point (int8:
outside the QDQ pairs; bf16: run in fp32); calibration reads the training split only."""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')

from mmext.deploy import DeployedModel, DeployError, export_model  # noqa: E402
from mmext.deploy.float_scopes import FLOAT_SCOPES, float_nodes  # noqa: E402
from mmext.deploy.quantize import calibration_batches, quantize_export, shrink_to_fit  # noqa: E402
from mmext.testing import tiny_config  # noqa: E402

BACKENDS = ('onnxruntime', 'openvino')
OPTIONS = dict(net2vec_tiny={'model.backbone.init_cfg': None},
               dlde_tiny={'model.test_cfg.score_thr': 0.3}, retinanet_tiny={'model.test_cfg.score_thr': 0.05})
CALIBRATION_IMAGES = 8
# OpenVINO bf16 with the float scopes in fp32: 99.3% (OCR), 99.5% (PointRend), 100% (Net2Vec) measured on a
# Sapphire Rapids CPU; PointRend gave 97.1% with every step in bf16.
BF16_AGREEMENT = 0.99


@pytest.fixture(scope='module')
def quantized(tmp_path_factory, trained_like, data_root):
    """``quantized(name)``: (config, fp32 export dir, int8 export dir, int8 deploy.json), made once."""
    cache = {}

    def make(name):
        if name not in cache:
            tmp = tmp_path_factory.mktemp(f'{name}_int8')
            cfg = tiny_config(name, data_root, tmp, OPTIONS.get(name))
            export_model(trained_like(name, OPTIONS.get(name)), cfg, tmp / 'fp32')
            spec = quantize_export(tmp / 'fp32', tmp / 'int8', cfg, CALIBRATION_IMAGES)
            cache[name] = cfg, tmp / 'fp32', tmp / 'int8', spec
        return cache[name]

    return make


def _val_images(data_root):
    return sorted(str(path) for path in (Path(data_root) / 'img_dir/val').glob('*.png'))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['ocr_tiny', 'pointrend_tiny', 'net2vec_tiny'])
def test_int8_segmentation_agrees_with_fp32(quantized, data_root, name, backend):
    """At least 94% of the validation pixels keep fp32's class: 95.7-99% measured on these tiny models
    after 20 iterations (their margins are small; the trained OCRNet's 99.6% is in docs/deploy.md)."""
    _, fp32, int8, _ = quantized(name)
    images = _val_images(data_root)
    want = [s.pred_sem_seg.data for s in DeployedModel(fp32, backend).predict(images[:1])]
    got = [s.pred_sem_seg.data for s in DeployedModel(int8, backend).predict(images[:1])]
    for image in images[1:]:
        want += [s.pred_sem_seg.data for s in DeployedModel(fp32, backend).predict([image])]
        got += [s.pred_sem_seg.data for s in DeployedModel(int8, backend).predict([image])]
    agreement = np.mean([(w == g).float().mean().item() for w, g in zip(want, got)])
    assert agreement >= 0.94, agreement


def _boxes(samples):
    return [(s.pred_instances.bboxes.numpy(), s.pred_instances.labels.numpy()) for s in samples]


def _iou(box, boxes):
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ['dlde_tiny', 'retinanet_tiny'])
def test_int8_detection_keeps_the_fp32_boxes(quantized, data_root, name, backend):
    """Of the boxes fp32 keeps (score > 0.3), at least 80% are kept by int8 with the same label and IoU
    above 0.8 (tiny models trained for 20 iterations score many boxes near the threshold)."""
    _, fp32, int8, _ = quantized(name)
    matched = total = 0
    for image in _val_images(data_root):
        (want_boxes, want_labels), = _boxes(DeployedModel(fp32, backend).predict([image]))
        (got_boxes, got_labels), = _boxes(DeployedModel(int8, backend).predict([image]))
        for box, label in zip(want_boxes, want_labels):
            same = got_labels == label
            matched += bool(same.any() and _iou(box, got_boxes[same]).max() > 0.8)
        total += len(want_boxes)
    assert total > 0 and matched / total >= 0.8, (matched, total)


@pytest.mark.parametrize('name, scope, op', [
    ('ocr_tiny', 'SpatialGather', 'Softmax'), ('pointrend_tiny', 'SegmentorGraph', 'TopK'),
    ('pointrend_tiny', 'SegmentorGraph', 'GridSample'), ('dlde_tiny', 'DetectorGraph', 'Sigmoid'),
    ('dlde_tiny', 'DetectorGraph', 'NonMaxSuppression')])
def test_sensitive_steps_stay_in_floating_point(quantized, name, scope, op):
    import onnx
    _, fp32, int8, spec = quantized(name)
    export = onnx.load(str(fp32 / 'end2end.onnx'), load_external_data=False)  # with the module metadata
    kept = set(float_nodes(export)) & {node.name for node in export.graph.node if any(
        p.key == 'pkg.torch.onnx.class_hierarchy' and scope in p.value for p in node.metadata_props)}
    graph = onnx.load(str(int8 / 'end2end.onnx'), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}
    quantizers = {node.input[0] for node in graph.node if node.op_type == 'QuantizeLinear'}
    in_scope = [node for node in graph.node if node.name in kept]
    assert op in {node.op_type for node in in_scope}, f'no {op} of {scope} found'
    for node in in_scope:  # a float step is not sandwiched between DequantizeLinear and QuantizeLinear
        from_dequantize = [i for i in node.input if i in producers]
        dequantized = from_dequantize and all(producers[i].op_type == 'DequantizeLinear'
                                              for i in from_dequantize)
        assert not (dequantized and quantizers.issuperset(node.output)), node.name
    quantized_convs = [n for n in graph.node if n.op_type == 'Conv' and any(
        producers.get(i) is not None and producers[i].op_type == 'DequantizeLinear' for i in n.input)]
    assert len(quantized_convs) >= 10  # the backbone's layers are int8
    assert spec['precision'] == 'int8' and scope in spec['calibration']['float_scopes']


def test_calibration_reads_the_training_split_only(tmp_path, data_root, trained_like):
    """With the validation images removed, quantizing still works, and the images read are the
    training split's."""
    model = trained_like('ocr_tiny')  # the tiny dataset is written into data_root by now
    data = tmp_path / 'data'
    shutil.copytree(data_root, data)
    shutil.rmtree(data / 'img_dir/val')
    cfg = tiny_config('ocr_tiny', data, tmp_path)
    export_model(model, cfg, tmp_path / 'fp32')
    spec = quantize_export(tmp_path / 'fp32', tmp_path / 'int8', cfg, count=3)
    paths = json.loads((tmp_path / 'int8/calibration_images.json').read_text())
    assert len(paths) == 3 and all('/img_dir/train/' in path for path in paths)
    assert spec['calibration']['split'] == 'train' and spec['calibration']['count'] == 3


def test_an_int8_export_is_not_quantized_again(quantized, tmp_path):
    cfg, _, int8, _ = quantized('ocr_tiny')
    with pytest.raises(DeployError, match="precision 'int8'; quantize the fp32 export"):
        quantize_export(int8, tmp_path / 'again', cfg)


def test_float_scopes_name_their_reason():
    assert all(kind in ('all', 'own') and reason for kind, reason in FLOAT_SCOPES.values())


def _bf16_cpu():
    from mmext.engine.optim import cpu_bf16_flags
    if not cpu_bf16_flags():
        pytest.skip('this CPU has no bf16 units (bf16 is refused on it)')


def _runtime_precisions(session) -> dict:
    """{layer type: set of runtime precisions} of a compiled OpenVINO session."""
    precisions = {}
    for op in session.model.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        precisions.setdefault(info['layerType'].astype(str), set()).add(info['runtimePrecision'].astype(str))
    return precisions


def test_keep_in_fp32_marks_the_named_nodes_only(quantized):
    import onnx

    from mmext.deploy.backends import keep_in_fp32, read_with_openvino
    _, fp32, _, _ = quantized('pointrend_tiny')
    names = float_nodes(onnx.load(str(fp32 / 'end2end.onnx'), load_external_data=False))
    model = read_with_openvino(fp32 / 'end2end.onnx')
    marked = keep_in_fp32(model, names)
    kept = {op.get_friendly_name(): op.get_type_name() for op in marked.get_ordered_ops()
            if 'DisablePrecisionConversion_0' in op.get_rt_info()}
    topk = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == 'TopK']
    assert topk and set(topk) <= set(kept)  # PointRend's point selection
    assert 'Convolution' not in kept.values() and 'Constant' not in kept.values()
    assert all(name.split('/')[0] in names for name in kept)
    assert len(marked.get_ordered_ops()) == len(model.get_ordered_ops())


def test_openvino_bf16_runs_the_float_scopes_in_fp32(quantized):
    """PointRend's top-k and point arithmetic run in fp32 while its convolutions run in bf16."""
    _bf16_cpu()
    from mmext.deploy.backends import OpenVinoSession
    _, fp32, _, _ = quantized('pointrend_tiny')
    session = OpenVinoSession(fp32 / 'end2end.onnx', 'bf16')
    precisions = _runtime_precisions(session)
    assert session.fp32_nodes > 0
    assert precisions['TopK'] == {'f32'} and precisions['Convolution'] == {'bf16'}
    assert 'f32' in precisions['Subgraph']  # fused element-wise arithmetic of the point coordinates


@pytest.mark.parametrize('name', ['ocr_tiny', 'pointrend_tiny', 'net2vec_tiny'])
def test_openvino_bf16_segmentation_agrees_with_fp32(quantized, data_root, name):
    _bf16_cpu()
    _, fp32, _, _ = quantized(name)
    images = _val_images(data_root)
    want = [s.pred_sem_seg.data for s in DeployedModel(fp32, 'openvino').predict(images)]
    got = [s.pred_sem_seg.data for s in DeployedModel(fp32, 'openvino', 'bf16').predict(images)]
    agreement = np.mean([(w == g).float().mean().item() for w, g in zip(want, got)])
    assert agreement >= BF16_AGREEMENT, agreement


def test_bf16_on_an_export_without_module_metadata_warns(quantized, tmp_path):
    """Without the exporter's metadata no node is known to need fp32; the user is told, not left with a
    silently worse model."""
    _bf16_cpu()
    import onnx
    _, fp32, _, _ = quantized('ocr_tiny')
    shutil.copytree(fp32, tmp_path / 'bare')
    model = onnx.load(str(fp32 / 'end2end.onnx'))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(tmp_path / 'bare/end2end.onnx'))
    with pytest.warns(UserWarning, match='does not say which modules its nodes come from'):
        DeployedModel(tmp_path / 'bare', 'openvino', 'bf16')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        DeployedModel(fp32, 'openvino', 'bf16')


def _samples(*shapes):
    """Dataset-like samples: (3, H, W) uint8 ``inputs`` of one grey level each, and an ``img_path``."""
    from types import SimpleNamespace
    return [dict(inputs=torch.full((3, *shape), 10 * (i + 1), dtype=torch.uint8),
                 data_samples=SimpleNamespace(img_path=f'train/{i}.png')) for i, shape in enumerate(shapes)]


def test_calibration_pads_images_into_a_larger_static_export():
    """As DeployedModel.predict feeds them: padded at the bottom and right, never stretched (ranges
    calibrated on stretched, smoother images clipped real activations: 22% of RetinaNet's confident
    boxes kept at 800x1333 against 95-97% padded)."""
    spec = dict(input=dict(shape=[2, 3, 96, 128]))
    batches = list(calibration_batches(_samples((64, 64), (64, 80)), 2, spec))
    assert len(batches) == 1 and batches[0]['paths'] == ['train/0.png', 'train/1.png']
    images = batches[0]['images']
    assert images.shape == (2, 3, 96, 128) and images.dtype == np.float32
    assert (images[0, :, :64, :64] == 10).all() and (images[1, :, :64, :80] == 20).all()
    assert images[0, :, 64:].sum() == 0 and images[0, :, :, 64:].sum() == 0
    assert images[1, :, :, 80:].sum() == 0


def test_calibration_shrinks_larger_images_keeping_their_ratio():
    spec = dict(input=dict(shape=[1, 3, 64, 64]))
    images = next(calibration_batches(_samples((128, 96)), 1, spec))['images']
    assert images.shape == (1, 3, 64, 64)
    assert (images[0, :, :, :48] == 10).all() and images[0, :, :, 48:].sum() == 0  # 128 x 96 -> 64 x 48
    assert shrink_to_fit(np.zeros((50, 40, 3), np.uint8), (64, 64)).shape == (50, 40, 3)


def test_calibration_of_a_dynamic_export_takes_images_as_they_are():
    spec = dict(input=dict(shape=[None, 3, None, None]))
    batches = list(calibration_batches(_samples((64, 64), (80, 96)), 2, spec))
    assert [batch['images'].shape for batch in batches] == [(1, 3, 64, 64), (1, 3, 80, 96)]
