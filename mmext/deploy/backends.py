"""Run an exported ONNX file: ONNX Runtime (CPU execution provider) or OpenVINO (CPU, fp32 or bf16), after
the checks of :mod:`mmext.deploy.model_check`."""
import tempfile
from pathlib import Path
from typing import Dict, Iterable, Optional
from xml.etree import ElementTree

import numpy as np

from mmext.engine import cpu_bf16_flags
from .float_scopes import float_nodes
from .limits import DeployLimits, deploy_limits
from .model_check import check_onnx, check_openvino_model
from .spec import DeployError

BACKENDS = ('onnxruntime', 'openvino')
PRECISIONS = ('fp32', 'bf16')
REDUCED_TYPES = ('f16', 'bf16')
UNMARKED_LAYERS = ('Const', 'Parameter', 'Result')  # IR layer types with no arithmetic


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


def keep_in_fp32(model, onnx_names: Iterable[str]):
    """A copy of the ov.Model ``model`` whose operations from the ONNX nodes ``onnx_names`` run in fp32 when
    it is compiled in bf16 (or f16).

    OpenVINO's CPU plugin keeps a node's precision when its runtime info holds ``DisablePrecisionConversion``
    towards the reduced type. The Python API can set runtime info only as strings, which the plugin does
    not read as that attribute; the IR reader does. So the model goes through IR (in memory), with the
    attribute added to the layers the ONNX frontend made from those nodes: they carry the node's name,
    alone or before a '/'.
    """
    import openvino as ov
    names = set(onnx_names)
    with tempfile.TemporaryDirectory() as directory:
        xml_path, bin_path = Path(directory) / 'model.xml', Path(directory) / 'model.bin'
        ov.save_model(model, str(xml_path), compress_to_fp16=False)
        tree = ElementTree.parse(xml_path)
        weights = np.fromfile(bin_path, dtype=np.uint8)
    for layer in tree.getroot().iter('layer'):
        if layer.get('name', '').split('/')[0] in names and layer.get('type') not in UNMARKED_LAYERS:
            rt_info = layer.find('rt_info')
            if rt_info is None:
                rt_info = ElementTree.SubElement(layer, 'rt_info')
            ElementTree.SubElement(rt_info, 'attribute', name='DisablePrecisionConversion', version='0',
                                   value=f'dynamic:{",".join(REDUCED_TYPES)}')
    return ov.Core().read_model(ElementTree.tostring(tree.getroot(), encoding='unicode'), ov.Tensor(weights))


class OpenVinoSession:
    """OpenVINO on the CPU, reading the ONNX file directly; ``precision`` is its
    ``INFERENCE_PRECISION_HINT``. What compiling would fold is checked against ``max_tensor_bytes``
    first (:func:`check_openvino_model`). In bf16 the export's float scopes
    (:mod:`mmext.deploy.float_scopes`) stay in fp32 (:func:`keep_in_fp32`); ``fp32_nodes`` counts the
    ONNX nodes kept."""

    def __init__(self, onnx_path: Path, precision: str = 'fp32',
                 max_tensor_bytes: int = DeployLimits.max_tensor_bytes):
        import onnx
        import openvino as ov
        hint = {'fp32': 'f32', 'bf16': 'bf16'}[precision]
        model = read_with_openvino(onnx_path)
        check_openvino_model(onnx_path, model, max_tensor_bytes)
        self.fp32_nodes = 0
        if precision == 'bf16':
            names = float_nodes(onnx.load(str(onnx_path), load_external_data=False))
            model, self.fp32_nodes = keep_in_fp32(model, names), len(names)
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
