"""Run an exported ONNX file: ONNX Runtime (CPU execution provider) or OpenVINO (CPU, fp32 or bf16), after
the checks of :mod:`mmext.deploy.model_check`."""
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from mmext.engine import cpu_bf16_flags
from .limits import DeployLimits, deploy_limits
from .model_check import check_onnx, check_openvino_model
from .spec import DeployError

BACKENDS = ('onnxruntime', 'openvino')
PRECISIONS = ('fp32', 'bf16')


def check_precision(backend: str, precision: str, cpuinfo: str = '/proc/cpuinfo') -> None:
    """Refuse what the backend or this CPU cannot do: bf16 is OpenVINO's, on a CPU with bf16 flags."""
    if backend not in BACKENDS:
        raise DeployError(f'backend {backend!r}: choose one of {BACKENDS}')
    if precision not in PRECISIONS:
        raise DeployError(f'precision {precision!r}: choose one of {PRECISIONS}')
    if precision == 'bf16':
        if backend != 'openvino':
            raise DeployError('bf16 inference is supported on the openvino backend only')
        if not cpu_bf16_flags(cpuinfo):
            raise DeployError(f'bf16 needs a CPU with avx512_bf16 or amx_bf16 ({cpuinfo} lists neither); '
                              'use --precision fp32')


class OnnxRuntimeSession:
    """ONNX Runtime on the CPU execution provider."""

    def __init__(self, onnx_path: Path, num_threads: int = 0):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: a spinning pool takes the cores from the rest of the
        # process (PyTorch eager ran 3x slower interleaved with a spinning session, on 2 cores).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        # The checks read the file as ONNX; ONNX Runtime would read an ORT-format file by its name.
        options.add_session_config_entry('session.load_model_format', 'ONNX')
        self.session = ort.InferenceSession(str(onnx_path), options, providers=['CPUExecutionProvider'])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        outputs = self.session.run(None, {self.session.get_inputs()[0].name: images})
        return dict(zip(self.output_names, outputs))


def read_with_openvino(onnx_path: Path):
    """The ov.Model of ``onnx_path`` read by OpenVINO's ONNX frontend, whatever the file's name and bytes:
    ``Core.read_model`` picks a frontend by probing the file, and the checks read it as ONNX."""
    from openvino.frontend import FrontEndManager
    frontend = FrontEndManager().load_by_framework('onnx')
    return frontend.convert(frontend.load(str(onnx_path)))


class OpenVinoSession:
    """OpenVINO on the CPU, reading the ONNX file directly; ``precision`` is its
    ``INFERENCE_PRECISION_HINT``. What compiling would fold is checked against ``max_tensor_bytes``
    first (:func:`check_openvino_model`)."""

    def __init__(self, onnx_path: Path, precision: str = 'fp32',
                 max_tensor_bytes: int = DeployLimits.max_tensor_bytes):
        import openvino as ov
        hint = {'fp32': 'f32', 'bf16': 'bf16'}[precision]
        model = read_with_openvino(onnx_path)
        check_openvino_model(onnx_path, model, max_tensor_bytes)
        # LATENCY: one request at a time on all cores. OpenVINO's default keeps busy worker streams
        # that starved PyTorch in the same process (70x slower interleaved, on 2 cores).
        self.model = ov.Core().compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': hint,
                                                           'PERFORMANCE_HINT': 'LATENCY'})
        self.request = self.model.create_infer_request()
        self.output_names = [o.get_any_name() for o in self.model.outputs]

    def __call__(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        results = self.request.infer({0: images})
        return {name: np.asarray(results[output]).copy()
                for name, output in zip(self.output_names, self.model.outputs)}


def open_session(onnx_path: Path, backend: str = 'onnxruntime', precision: str = 'fp32', root=None,
                 limits: Optional[DeployLimits] = None):
    """A callable ``(B, 3, H, W) float32 array -> {output name: array}``, once the ONNX file has passed
    :func:`check_onnx` against ``limits`` (default :func:`deploy_limits`).

    Args:
        root: the directory the file's external data must lie in; default the file's own.
    """
    check_precision(backend, precision)
    onnx_path = Path(onnx_path).resolve()
    max_bytes = deploy_limits(limits).max_tensor_bytes
    check_onnx(onnx_path, root or onnx_path.parent, max_bytes)
    if backend == 'onnxruntime':
        return OnnxRuntimeSession(onnx_path)
    return OpenVinoSession(onnx_path, precision, max_bytes)
