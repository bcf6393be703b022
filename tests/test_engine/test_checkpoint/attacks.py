"""Checkpoints an attacker would hand a user, one function per attack.

Each writes a file to ``path`` and returns it as a string. Code-running files create ``marker`` if
anything in them runs; the denial-of-service ones are small files that ask the allowed functions for
gigabytes or for endless hashing. Used by test_security.py, test_load.py and tests/scripts/load_attack.py.
"""
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


class Reduce:
    """Unpickles as ``func(*args)``, then BUILDs ``state`` on the result if given."""

    def __init__(self, func, args=(), state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _write_marker(marker):
    return f'open({str(marker)!r}, "w").write("pwned")'


PAYLOADS = {
    'exec': lambda marker: Reduce(exec, (_write_marker(marker), )),
    'eval': lambda marker: Reduce(eval, (_write_marker(marker), )),
    'os.system': lambda marker: Reduce(os.system, (f'touch {marker}', )),
    'subprocess.Popen': lambda marker: Reduce(subprocess.Popen, (['touch', str(marker)], )),
}


def code_running(path, marker, payload='exec', fmt='zip'):
    """A checkpoint-shaped dict whose ``meta`` runs ``payload`` when unpickled; ``fmt`` is 'zip',
    'legacy' (torch < 1.6's format) or 'raw-pickle'."""
    checkpoint = {'state_dict': {}, 'meta': {'note': PAYLOADS[payload](marker)}}
    if fmt == 'raw-pickle':
        with open(path, 'wb') as f:
            pickle.dump(checkpoint, f)
    else:
        torch.save(checkpoint, path, _use_new_zipfile_serialization=fmt == 'zip')
    return str(path)


def config_string(genuine, path, marker):
    """A genuine checkpoint made only of plain data, with code appended to every config text it stores:
    ``meta['cfg']`` and ``message_hub['runtime_info']['cfg']`` (what mmengine writes and its inferencers
    read) and ``meta['config']`` (what ``Runner.resume`` reads)."""
    checkpoint = torch.load(genuine, weights_only=False)  # the test's own file
    code = f'\n{_write_marker(marker)}\n'
    checkpoint['meta']['cfg'] += code
    checkpoint['meta']['config'] = checkpoint['meta']['cfg']
    checkpoint['message_hub']['runtime_info']['cfg'] += code
    torch.save(checkpoint, path)
    return str(path)


def _with_data_pkl(path, data_pkl):
    """A torch zip checkpoint whose data.pkl is ``data_pkl``."""
    torch.save({}, path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, 'w') as archive:  # stored, as torch.save writes
        for name, data in members.items():
            archive.writestr(name, data_pkl if name.endswith('/data.pkl') else data)
    return str(path)


def nested_tuple_key(path, depth=100):
    """``{t: 1}`` where ``t = (t', t')`` nested ``depth`` times by shared reference: the pickle has
    ``depth`` tuples, hashing the key visits 2**depth of them."""
    ops = [b'\x80\x02})']  # PROTO 2, EMPTY_DICT, EMPTY_TUPLE
    for i in range(depth):  # BINPUT i, BINGET i, TUPLE2: (t, t) from the t on the stack
        ops.append(b'q' + bytes([i]) + b'h' + bytes([i]) + b'\x86')
    ops.append(b'K\x01s.')  # BININT1 1, SETITEM, STOP
    return _with_data_pkl(path, b''.join(ops))


def deflated_zip(path, nbytes=2**31):
    """A zip whose data.pkl is one string of ``nbytes`` spaces, deflated to a few MB."""

    def chunks(size=2**26):
        yield b'\x80\x02X' + struct.pack('<I', nbytes)
        for _ in range(nbytes // size):
            yield b' ' * size
        yield b'.'

    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open('archive/data.pkl', 'w', force_zip64=True) as f:
            for chunk in chunks():
                f.write(chunk)
        archive.writestr('archive/version', '3\n')
    return str(path)


def void_scalar(path, nbytes=10**9):
    """``numpy scalar(dtype('V<nbytes>'))``: numpy allocates and zeroes ``nbytes``."""
    scalar = Reduce(np._core.multiarray.scalar, (Reduce(np.dtype, (f'V{nbytes}', False, True)), ))
    torch.save({'meta': {'eta': scalar}}, path)
    return str(path)


def stride0_set(path, numel=2 * 10**6):
    """``set()`` of a tensor of ``numel`` elements viewing a 1-element storage with stride 0."""
    torch.save({'meta': {'ids': Reduce(set, (torch.zeros(1).expand(numel), ))}}, path)
    return str(path)


def huge_bytearray(path, nbytes=2**30):
    """``bytearray(nbytes)``: a zeroed buffer of that many bytes."""
    torch.save({'meta': {'buffer': Reduce(bytearray, (nbytes, ))}}, path)
    return str(path)


def _method(owner, name):
    return Reduce(getattr, (owner, name))


def swapped_statistics(path):
    """A HistoryBuffer whose pickled statistics table maps 'mean' to ``HistoryBuffer.max``: mmengine would
    merge it into the class-wide table, so every later log of every buffer reports maxima as means."""
    state = {'_log_history': np.array([1.0, 3.0]), '_count_history': np.array([1, 1]),
             '_max_length': 1000000, 'statistics_methods': {'mean': _method(HistoryBuffer, 'max')}}
    buffer = Reduce(HistoryBuffer, (), state)
    torch.save({'state_dict': {}, 'message_hub': {'log_scalars': {'train/loss': buffer}}}, path)
    return str(path)


def rebuild_calls_method(path):
    """``torch._tensor._rebuild_from_type_v2`` calling ``HistoryBuffer.max`` (obtained through the
    allow-list's getattr stand-in) with arguments from the file."""
    call = Reduce(torch._tensor._rebuild_from_type_v2,
                  (_method(HistoryBuffer, 'max'), torch.Tensor, (Reduce(HistoryBuffer, ()), ), {}))
    torch.save({'state_dict': {}, 'meta': {'x': call}}, path)
    return str(path)


DENIAL_OF_SERVICE = {
    'nested-tuple-key': nested_tuple_key,
    'deflated-zip-2GiB': deflated_zip,
    'void-scalar-1e9': void_scalar,
    'set-of-stride0-tensor': stride0_set,
    'bytearray-2**30': huge_bytearray,
}
TAMPERING = {
    'swapped-statistics': swapped_statistics,
    'rebuild-calls-method': rebuild_calls_method,
}
