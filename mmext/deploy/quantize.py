"""Post-training int8 quantization of an export: ONNX Runtime's static quantization (QDQ: int8 weights per
output channel, uint8 activations), calibrated on images of the config's training split.

The result is another export directory whose ONNX file holds QuantizeLinear/DequantizeLinear pairs
around the layers; ONNX Runtime fuses them into integer kernels, and OpenVINO reads them as its own
int8 FakeQuantize, so :class:`~mmext.deploy.DeployedModel` and the deploy tools run it unchanged.

What stays in floating point is found from the graph, not from node ids
(:mod:`mmext.deploy.float_scopes`).
"""
import json
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

import numpy as np

from .export import build_dataset
from .float_scopes import FLOAT_SCOPES, float_nodes
from .spec import ONNX_FILE, DeployError, onnx_file, read_spec, write_spec

CALIBRATION_SPLIT = 'train'


def calibration_dataset(cfg):
    """The config's training dataset read through its test-time pipeline: the images a deployed model
    sees, from the split that is never evaluated."""
    dataset_cfg = dict(cfg[f'{CALIBRATION_SPLIT}_dataloader'].dataset,
                       pipeline=cfg.test_dataloader.dataset.pipeline)
    if 'test_mode' in cfg.test_dataloader.dataset:  # mmdet: no filtering of images without boxes
        dataset_cfg['test_mode'] = cfg.test_dataloader.dataset.test_mode
    return build_dataset(cfg, dataset_cfg)


def calibration_batches(dataset, count: int, shape: Sequence[Optional[int]]) -> Iterator[Dict]:
    """``count`` images spread over ``dataset``, as (B, 3, H, W) float32 BGR batches of the export's
    input ``shape`` (None: any); each yields ``{'images': batch, 'paths': [...]}``."""
    import cv2
    batch_size = shape[0] or 1
    indices = np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int)
    images, paths = [], []
    for index in indices:
        sample = dataset[int(index)]
        image = sample['inputs'].numpy().transpose(1, 2, 0)  # (H, W, 3) uint8 BGR
        if shape[2] is not None and image.shape[:2] != tuple(shape[2:]):
            image = cv2.resize(image, (shape[3], shape[2]), interpolation=cv2.INTER_LINEAR)
        images.append(image)
        paths.append(sample['data_samples'].img_path)
        if len(images) == batch_size:
            yield dict(images=np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), np.float32),
                       paths=paths)
            images, paths = [], []


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` over :func:`calibration_batches`, keeping the paths read."""

    def __init__(self, batches: Iterator[Dict], input_name: str):
        self.batches, self.input_name, self.paths = batches, input_name, []

    def get_next(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        self.paths += batch['paths']
        return {self.input_name: batch['images']}


def quantize_export(export_dir, out_dir, cfg, count: int = 32) -> dict:
    """Write an int8 copy of the fp32 export ``export_dir`` to ``out_dir`` and return its deploy.json.

    Args:
        cfg: the export's config; its training split calibrates (:func:`calibration_dataset`).
        count: calibration images, spread evenly over the split.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    spec = read_spec(export_dir)
    if spec.get('precision', 'fp32') != 'fp32':
        raise DeployError(f'{export_dir}: precision {spec["precision"]!r}; quantize the fp32 export')
    if count < 1:
        raise DeployError(f'--calib-images {count}: calibrate on at least one image')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = onnx_file(export_dir, spec)
    prepared = out_dir / 'prepared.onnx'
    # Found on the export: pre-processing keeps node names but drops the module metadata.
    excluded = float_nodes(onnx.load(str(source), load_external_data=False))
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    reader = _Reader(calibration_batches(calibration_dataset(cfg), count, spec['input']['shape']),
                     spec['input']['name'])
    quantize_static(str(prepared), str(out_dir / ONNX_FILE), reader, quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded)
    prepared.unlink()
    spec.update(onnx=ONNX_FILE, precision='int8', calibration=dict(
        method='onnxruntime static QDQ, MinMax, per-channel int8 weights, uint8 activations',
        config=spec.get('config'), split=CALIBRATION_SPLIT, count=len(reader.paths),
        float_scopes=sorted(FLOAT_SCOPES), float_nodes=len(excluded)))
    write_spec(out_dir, spec)
    (out_dir / 'calibration_images.json').write_text(json.dumps(reader.paths, indent=0))
    return spec
