"""The structure scan: what it counts, the bounds a user can raise, and that it reads what torch reads."""
import contextlib
import importlib.util
import io
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import mmext  # noqa: F401
import mmext.engine.checkpoint.scan as scan_module
from mmext.engine.checkpoint import (CheckpointLimits, UnsafeCheckpointError, checkpoint_limits,
                                     current_limits, load_checkpoint_file)
from mmext.engine.checkpoint.limits import ENV_VAR
from mmext.engine.checkpoint.scan import NUMPY_DTYPES, CheckpointStructureError, scan_checkpoint

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
    attacks._with_data_pkl(path, data_pkl)
    with pytest.raises(CheckpointStructureError):
        scan_checkpoint(path)


def _rewrite_zip(path, members):
    """Write ``members`` ({name: bytes}, in order) as a stored zip, as torch.save does."""
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return str(path)


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _case_variant(path, later_wins):
    """Two data.pkl members differing in case; ``later_wins`` puts the one torch finds second."""
    torch.save({'genuine': 1}, path)
    members, other = _members(path), pickle.dumps({'other': 2}, protocol=2)
    prefix = next(iter(members)).split('/')[0]
    data_pkl = members.pop(f'{prefix}/data.pkl')
    pair = [(f'{prefix}/data.pkl', data_pkl), (f'{prefix}/DATA.PKL', other)]
    return _rewrite_zip(path, dict((pair if later_wins else pair[::-1]) + list(members.items())))


def _prefixed(path):
    """Bytes before the archive whose offsets are not adjusted: Python's zipfile compensates (it reads
    the central directory from just before its end record), torch's reader does not."""
    torch.save({'genuine': 1}, path)
    data = Path(path).read_bytes()
    Path(path).write_bytes(pickle.dumps({'prefix': 3}, protocol=2) + data)
    return str(path)


def _second_folder(path):
    torch.save({'genuine': 1}, path)
    members = _members(path)
    members['other/data.pkl'] = pickle.dumps({'other': 2}, protocol=2)
    return _rewrite_zip(path, members)


ZIP_VARIANTS = {
    'genuine': lambda path: torch.save({'genuine': 1}, path) or str(path),
    'case-variant, lower first': lambda path: _case_variant(path, later_wins=True),
    'case-variant, upper first': lambda path: _case_variant(path, later_wins=False),
    'prefixed archive': _prefixed,
    'second folder': _second_folder,
    'attack case-variant-data-pkl': lambda path: attacks.case_variant_zip(path, nbytes=100),
}


@pytest.mark.parametrize('variant', list(ZIP_VARIANTS))
def test_scan_reads_the_bytes_torch_unpickles(tmp_path, monkeypatch, variant):
    """Differential: whatever data.pkl torch's weights_only unpickler gets, the scan read the same bytes
    (checked with the refusal of clashing names switched off, so that the reading itself is tested)."""
    path = ZIP_VARIANTS[variant](tmp_path / 'archive.pth')
    scanned, unpickled = [], []
    scan_pickle = scan_module._scan_pickle
    monkeypatch.setattr(scan_module, '_check_record_names', lambda records: None)

    def recording_scan(data, limits, globals_, storage_size=None, start=0):
        if storage_size is not None:  # a zip's data.pkl (the legacy format has no storage records)
            scanned.append(data)
        return scan_pickle(data, limits, globals_, storage_size, start)

    monkeypatch.setattr(scan_module, '_scan_pickle', recording_scan)
    unpickler_init = torch._weights_only_unpickler.Unpickler.__init__

    def recording_init(self, file, **kwargs):
        if isinstance(file, io.BytesIO):  # a zip's data.pkl, as torch's _load reads it
            unpickled.append(file.getvalue())
        unpickler_init(self, file, **kwargs)

    monkeypatch.setattr(torch._weights_only_unpickler.Unpickler, '__init__', recording_init)
    with contextlib.suppress(CheckpointStructureError):
        scan_checkpoint(path)
    with contextlib.suppress(Exception):
        torch.load(path, weights_only=True)
    assert unpickled == scanned
    if variant == 'attack case-variant-data-pkl':
        assert unpickled and b'scalar' in unpickled[0]  # the file does attack torch's reading


@pytest.mark.parametrize('variant', ['case-variant, lower first', 'case-variant, upper first',
                                     'second folder'])
def test_ambiguous_archives_are_refused(tmp_path, variant):
    path = ZIP_VARIANTS[variant](tmp_path / 'archive.pth')
    with pytest.raises(CheckpointStructureError, match='differ only in case|not in a subdirectory|data.pkl'):
        scan_checkpoint(path)


def test_numeric_numpy_meta_loads(tmp_path):
    """Numbers and booleans of every numeric numpy dtype, as scalars and arrays (a hook's np.bool_, a
    uint8 palette, float16 statistics), load as they were saved."""
    meta = {code: (np.zeros((), code)[()] + 1, np.arange(6).astype(code).reshape(2, 3))
            for code in NUMPY_DTYPES}
    path = tmp_path / 'numpy.pth'
    torch.save({'meta': meta}, path)
    loaded = load_checkpoint_file(str(path))['meta']
    for code, (scalar, array) in meta.items():
        assert type(loaded[code][0]) is type(scalar) and loaded[code][0] == scalar
        np.testing.assert_array_equal(loaded[code][1], array)
        assert loaded[code][1].dtype == array.dtype


@pytest.mark.parametrize('depth,refused', [(100, False), (101, True)])
def test_nesting_depth_bound(tmp_path, depth, refused):
    """``deep_tuple_key(d)`` nests d tuples around the empty one, in a dict: d + 2 deep."""
    path = attacks.deep_tuple_key(tmp_path / 'deep.pth', depth - 2)
    if refused:
        with pytest.raises(CheckpointStructureError, match='nested more than 100 deep'):
            scan_checkpoint(path)
        with checkpoint_limits(max_nesting_depth=101):
            scan_checkpoint(path)
    else:
        scan_checkpoint(path)


def test_nesting_built_by_appends_is_bounded(tmp_path):
    """Lists nested by appending each to the one before (their depth grows after they are built)."""
    # MARK, L0 = [], then 150 times: L(i+1) = [], append it to Li, push L(i+1); a tuple of all of them.
    ops = b'\x80\x02(]q\x00' + b''.join(b']q' + bytes([i + 1]) + b'ah' + bytes([i + 1])
                                         for i in range(150)) + b't.'
    path = attacks._with_data_pkl(tmp_path / 'lists.pth', ops)
    with pytest.raises(CheckpointStructureError, match='nested more than 100 deep'):
        scan_checkpoint(path)


@pytest.mark.parametrize('keys,refused', [
    ([k * (2**61 - 1) for k in range(1, 65)], False),
    ([k * (2**61 - 1) for k in range(1, 66)], True),
    (list(range(100000)), False),
    ([(k * (2**61 - 1), 'a') for k in range(1, 66)], True),  # a tuple's hash combines its items'
    ([np.int64(k) for k in range(100000)], False),  # numpy scalars are hashed by value
], ids=['64-equal-hashes', '65-equal-hashes', 'distinct', 'tuples', 'numpy-scalars'])
def test_hash_collision_bound(tmp_path, keys, refused):
    path = tmp_path / 'keys.pth'
    torch.save({'meta': dict.fromkeys(keys)}, path)
    if refused:
        with pytest.raises(CheckpointStructureError, match='more than 64 keys with the hash'):
            scan_checkpoint(path)
        with checkpoint_limits(max_equal_hashes=len(keys)):
            scan_checkpoint(path)
    else:
        scan_checkpoint(path)


def test_set_elements_and_opaque_keys_are_counted(tmp_path):
    """Set elements count like dict keys; keys whose hash the scan cannot compute (objects built by the
    pickle, here tensors) count as one hash."""
    for value in (set(k * (2**61 - 1) for k in range(1, 66)), {torch.zeros(1): k for k in range(65)}):
        path = tmp_path / 'keys.pth'
        torch.save({'meta': value}, path)
        with pytest.raises(CheckpointStructureError, match='more than 64 keys'):
            scan_checkpoint(path)


def test_legacy_storage_is_sized_by_its_first_declaration(tmp_path):
    path = attacks.legacy_redeclared_storage(tmp_path / 'legacy.pth', numel=10)
    with pytest.raises(CheckpointStructureError, match=r"storage 0 declared as .* and again"):
        scan_checkpoint(path)


@pytest.mark.parametrize('name,make', list(attacks.SECOND_ROUND_TAMPERING.items()))
def test_tampering_is_refused_with_the_file_name(tmp_path, name, make):
    path = make(tmp_path / f'{name}.pth')
    with pytest.raises(UnsafeCheckpointError, match=re.escape(path)):
        load_checkpoint_file(path)
