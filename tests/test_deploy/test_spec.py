"""Bad export directories and bad input batches give errors that name what is expected; deploy.json names
an ONNX file inside its export directory or is refused."""
import json

import numpy as np
import pytest

from mmext.deploy.spec import DeployError, check_batch, onnx_file, read_spec, write_spec

SPEC = dict(format='mmext.deploy/1', task='segmentation', onnx='end2end.onnx',
            input=dict(name='images', dtype='float32', channel_order='bgr', shape=[1, 3, 64, 64]))
EXPECTED = r'expected images: float32 \(1, 3, 64, 64\), 0\.\.255, bgr channel order'


@pytest.mark.parametrize('batch, problem', [
    (np.zeros((1, 1, 64, 64), np.float32), '1 channels'),
    (np.zeros((1, 3, 64, 64), np.uint8), 'dtype uint8'),
    (np.zeros((1, 3, 32, 64), np.float32), r'shape \(1, 3, 32, 64\); this export is static'),
    (np.zeros((3, 64, 64), np.float32), '3 dims'),
])
def test_bad_batches_name_the_expected_input(batch, problem):
    with pytest.raises(DeployError, match=f'{EXPECTED}; got .*{problem}'):
        check_batch(SPEC, batch)


def test_dynamic_input_accepts_any_batch_and_size():
    check_batch(dict(SPEC, input=dict(SPEC['input'], shape=[None, 3, None, None])),
                np.zeros((2, 3, 96, 80), np.float32))


def test_directory_without_deploy_json(tmp_path):
    (tmp_path / 'end2end.onnx').write_bytes(b'')
    with pytest.raises(DeployError, match='has no deploy.json'):
        read_spec(tmp_path)


def test_directory_without_its_onnx_file(tmp_path):
    write_spec(tmp_path, SPEC)
    with pytest.raises(DeployError, match='not its ONNX file end2end.onnx'):
        read_spec(tmp_path)


def test_missing_directory_and_bad_json(tmp_path):
    with pytest.raises(DeployError, match='is not a directory'):
        read_spec(tmp_path / 'nowhere')
    (tmp_path / 'deploy.json').write_text('{')
    with pytest.raises(DeployError, match='not valid JSON'):
        read_spec(tmp_path)
    (tmp_path / 'deploy.json').write_text(json.dumps(dict(SPEC, format='other')))
    with pytest.raises(DeployError, match="format 'other'"):
        read_spec(tmp_path)


@pytest.fixture
def export_dir(tmp_path):
    """An export directory beside an ONNX file outside it (``tmp_path/elsewhere.onnx``)."""
    (tmp_path / 'elsewhere.onnx').write_bytes(b'')
    (tmp_path / 'export').mkdir()
    (tmp_path / 'export/end2end.onnx').symlink_to(tmp_path / 'elsewhere.onnx')
    return tmp_path / 'export'


@pytest.mark.parametrize('name', ['absolute', '../elsewhere.onnx', 'sub/../../elsewhere.onnx',
                                  'end2end.onnx'])
def test_onnx_file_outside_the_export_directory_is_refused(export_dir, name):
    """An absolute path, relative ones out, and a symbolic link out (end2end.onnx)."""
    elsewhere = export_dir.parent / 'elsewhere.onnx'
    name = str(elsewhere) if name == 'absolute' else name
    write_spec(export_dir, dict(SPEC, onnx=name))
    with pytest.raises(DeployError, match=f"deploy.json: the ONNX file '{name}' resolves to {elsewhere}, "
                                          'outside the export directory'):
        read_spec(export_dir)


def test_onnx_file_linked_inside_the_export_directory_resolves_to_its_target(export_dir):
    (export_dir / 'models').mkdir()
    (export_dir / 'models/model.onnx').write_bytes(b'')
    (export_dir / 'end2end.onnx').unlink()
    (export_dir / 'end2end.onnx').symlink_to('models/model.onnx')
    write_spec(export_dir, SPEC)
    assert onnx_file(export_dir, read_spec(export_dir)) == (export_dir / 'models/model.onnx').resolve()


@pytest.mark.parametrize('name', [None, '', ['end2end.onnx'], 'end2end\0.onnx'])
def test_onnx_entry_that_names_no_file_is_refused(tmp_path, name):
    write_spec(tmp_path, dict(SPEC, onnx=name))
    with pytest.raises(DeployError, match='"onnx" must name a file'):
        read_spec(tmp_path)
