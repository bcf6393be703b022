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
from typing import Dict, Iterator, Sequence

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


def shrink_to_fit(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """An (H, W, 3) image larger than ``size`` (H, W) resized to fit inside it, keeping its aspect ratio;
    others unchanged."""
    import cv2
    scale = min(size[0] / image.shape[0], size[1] / image.shape[1])
    if scale >= 1:
        return image
    width, height = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def calibration_batches(dataset, count: int, spec: dict) -> Iterator[Dict]:
    """``count`` images spread over ``dataset``, in (B, 3, H, W) float32 BGR batches as the export with
    deploy.json ``spec`` receives them from :meth:`~mmext.deploy.DeployedModel.predict`: a static export's
    smaller images padded at the bottom and right (:func:`~mmext.deploy.deployed_model.fit_to_export`),
    larger ones shrunk to fit first. Never stretched: an upscaled image is smoother than any real one, and
    ranges calibrated on it clip a real image's activations. Yields ``{'images': batch, 'paths': [...]}``."""
    from .deployed_model import fit_to_export
    batch_size, size = spec['input']['shape'][0] or 1, spec['input']['shape'][2:]
    indices = np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int)
    images, paths = [], []
    for index in indices:
        sample = dataset[int(index)]
        image = sample['inputs'].numpy().transpose(1, 2, 0)  # (H, W, 3) uint8 BGR
        images.append(image if size[0] is None else shrink_to_fit(image, size))
        paths.append(sample['data_samples'].img_path)
        if len(images) == batch_size:
            yield dict(images=fit_to_export(images, spec), paths=paths)
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
    reader = _Reader(calibration_batches(calibration_dataset(cfg), count, spec),
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
