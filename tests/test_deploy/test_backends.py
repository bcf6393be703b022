"""Backend and precision choice: bf16 is OpenVINO's, and only on a CPU that reports bf16 flags."""
import pytest

from mmext.deploy.backends import check_precision
from mmext.deploy.spec import DeployError


def test_bf16_is_refused_on_a_cpu_without_bf16_flags(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('flags\t\t: fpu sse avx2 avx512f\n')
    with pytest.raises(DeployError, match='bf16 needs a CPU with avx512_bf16 or amx_bf16'):
        check_precision('openvino', 'bf16', str(cpuinfo))


def test_bf16_is_accepted_where_the_cpu_reports_it(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('flags\t\t: fpu avx512f avx512_bf16\n')
    check_precision('openvino', 'bf16', str(cpuinfo))


@pytest.mark.parametrize('backend, precision, match', [
    ('onnxruntime', 'bf16', 'openvino backend only'), ('tensorrt', 'fp32', 'choose one of'),
    ('openvino', 'fp16', 'choose one of')])
def test_unsupported_choices(backend, precision, match):
    with pytest.raises(DeployError, match=match):
        check_precision(backend, precision)
