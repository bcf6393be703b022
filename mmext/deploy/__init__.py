"""Deployment without mmdeploy: export a model to ONNX with torch's own exporter (preprocessing, and for
detectors score threshold and NMS, inside the graph) and run it on ONNX Runtime or OpenVINO.

Not imported by ``import mmext``: it needs the ``mmext[deploy]`` extra (onnx, onnxscript, onnxruntime,
openvino).
"""
from .backends import BACKENDS, PRECISIONS, check_precision, open_session
from .deployed_model import DeployedModel
from .export import export_model, test_input_size
from .limits import DeployLimits
from .spec import DeployError, read_spec

__all__ = ['DeployedModel', 'DeployError', 'DeployLimits', 'export_model', 'read_spec', 'open_session',
           'check_precision', 'test_input_size', 'BACKENDS', 'PRECISIONS']
