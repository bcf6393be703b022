"""The structure scan: what it counts, and the bounds a user can raise."""
import importlib.util
import io
from pathlib import Path

import pytest
import torch

import mmext  # noqa: F401
from mmext.engine.checkpoint import CheckpointLimits, checkpoint_limits, current_limits, load_checkpoint_file
from mmext.engine.checkpoint.limits import ENV_VAR
from mmext.engine.checkpoint.scan import CheckpointStructureError, scan_checkpoint

_spec = importlib.util.spec_from_file_location('mmext_tests_attacks', Path(__file__).parent / 'attacks.py')
attacks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(attacks)


@pytest.mark.parametrize('depth,refused', [(22, False), (23, True)])
def test_nested_tuple_counts_every_shared_reference(tmp_path, depth, refused):
    """The key of depth d expands to 2**(d+1) - 1 tuples; with the dict and the value the pickle is
    2**(d+1) + 1 nodes: 8388609 for d = 22 (under 10**7), 16777217 for d = 23 (over)."""
    path = attacks.nested_tuple_key(tmp_path / 'nested.pth', depth)
    if refused:
        with pytest.raises(CheckpointStructureError, match='more than 10000000 nodes'):
            scan_checkpoint(path)
        with checkpoint_limits(max_pickle_nodes=2**24 + 1):
            scan_checkpoint(path)
    else:
        scan_checkpoint(path)
        with checkpoint_limits(max_pickle_nodes=2**23):
            with pytest.raises(CheckpointStructureError):
                scan_checkpoint(path)


def test_limits_nest_and_restore():
    assert current_limits() == CheckpointLimits()
    with checkpoint_limits(max_pickle_bytes=10) as outer:
        assert current_limits().max_pickle_bytes == 10 and outer.max_pickle_nodes == 10**7
        with checkpoint_limits(max_pickle_nodes=5):
            assert (current_limits().max_pickle_bytes, current_limits().max_pickle_nodes) == (10, 5)
        assert current_limits() == outer
    assert current_limits() == CheckpointLimits()


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, 'max_pickle_bytes=1024, max_storage_bytes=2048')
    assert current_limits() == CheckpointLimits(max_pickle_bytes=1024, max_storage_bytes=2048)
    monkeypatch.setenv(ENV_VAR, 'max_pickle_byte=1')
    with pytest.raises(ValueError, match='max_pickle_bytes'):
        current_limits()


def test_data_pkl_and_storage_bounds(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'w': torch.ones(1000)}, path)  # 4000 bytes of storage
    scan_checkpoint(path)
    with checkpoint_limits(max_storage_bytes=3999):
        with pytest.raises(CheckpointStructureError, match='a storage of 4000 bytes'):
            scan_checkpoint(path)
    with checkpoint_limits(max_pickle_bytes=16):
        with pytest.raises(CheckpointStructureError, match='data.pkl has .* bytes, more than'):
            scan_checkpoint(path)


def test_views_within_their_storage_load(tmp_path):
    """Slices, transposes and tied weights share storages without showing more elements than they have."""
    base = torch.arange(24.)
    state = {'slice': base[5:17], 'strided': base.view(4, 6)[:, ::2], 't': base.view(4, 6).t(), 'tied': base}
    path = tmp_path / 'views.pth'
    torch.save(state, path)
    loaded = load_checkpoint_file(str(path))
    for name, value in state.items():
        assert torch.equal(loaded[name], value)


def test_legacy_storage_larger_than_the_file_is_refused(tmp_path):
    path = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(64)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    scan_checkpoint(path)
    # The persistent id declares the storage's element count (64, BININT1 '@') after its location 'cpu'.
    marker = b'cpuq\x06K@N'
    assert marker in data
    path.write_bytes(data.replace(marker, b'cpuq\x06J' + (10**8).to_bytes(4, 'little') + b'N'))
    with pytest.raises(CheckpointStructureError, match='its storages declare 400000000 bytes'):
        scan_checkpoint(path)


def test_file_objects_are_scanned_and_rewound(tmp_path):
    buffer = io.BytesIO()
    torch.save({'w': torch.ones(3)}, buffer)
    buffer.seek(0)
    scan_checkpoint(buffer)
    assert buffer.tell() == 0
    assert torch.equal(load_checkpoint_file(buffer, name='in-memory')['w'], torch.ones(3))


@pytest.mark.parametrize('data_pkl', [
    b'\x80\x02K\x01K\x02a.',       # APPEND to an integer
    b'\x80\x02(K\x01t\x85R.',      # REDUCE of a tuple
    b'\x80\x02h\x05.',             # memo entry never set
    b'\x80\x02}K\x01',             # no STOP
    b'\x80\x02\x95\x00.',          # FRAME-like garbage
], ids=['append-to-int', 'reduce-of-tuple', 'unset-memo', 'no-stop', 'garbage'])
def test_malformed_pickles_are_refused_as_structure_errors(tmp_path, data_pkl):
    path = tmp_path / 'malformed.pth'
    torch.save({}, path)
    import zipfile
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data_pkl if name.endswith('/data.pkl') else data)
    with pytest.raises(CheckpointStructureError):
        scan_checkpoint(path)
