"""Reads a checkpoint's structure without unpickling it, and refuses what no OpenMMLab checkpoint holds.

torch's ``weights_only`` unpickler decides *which* globals a pickle may name; it does not bound *what
the allowed ones are asked to do*. A file under 1 KB can ask them to allocate gigabytes
(``bytearray(2**30)``, a void dtype of 1e9 bytes, ``UntypedStorage(2**40)``, a zip member that inflates to
2 GiB), or to hash or iterate without end (a tuple nested by shared reference as a dict key, ``set()``
of a stride-0 tensor of 2e6 elements). :func:`scan_checkpoint` walks the pickle opcodes with a symbolic
stack (:mod:`pickletools` parses, nothing is built or called) and refuses such files before torch
touches them, so a refusal costs the size of the pickle in time and memory.

What it accepts is what ``torch.save`` writes for OpenMMLab checkpoints (state dicts, optimizer and
scheduler states, mmengine's message hub with numpy arrays and scalars), in the zip format or the
legacy one; the bounds are in :mod:`mmext.engine.checkpoint.limits`.
"""
import _compat_pickle
import io
import math
import pickletools
import warnings
import zipfile

import torch

from .limits import current_limits

# dtypes of numpy arrays and scalars in OpenMMLab checkpoints: numbers only (no void, object, string or
# datetime dtypes, whose item size a pickle chooses).
NUMPY_DTYPES = frozenset({'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'c8',
                          'c16'})
# Tensor rebuild functions whose first four arguments are (storage, offset, size, stride).
_VIEW_REBUILDS = frozenset({'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2',
                            'torch._utils._rebuild_tensor_v3'})
# Other rebuild functions torch allows that OpenMMLab checkpoints use; they only wrap a tensor.
_WRAPPING_REBUILDS = frozenset({'torch._utils._rebuild_parameter',
                                'torch._utils._rebuild_parameter_with_state',
                                'torch._utils._rebuild_device_tensor_from_cpu_tensor',
                                'torch._utils._rebuild_meta_tensor_no_storage'})
_TENSOR_REBUILDS = _VIEW_REBUILDS | _WRAPPING_REBUILDS
# torch globals a checkpoint may call; any other torch callable (a tensor or storage class, whose call
# allocates what its arguments say; a sparse, nested, quantized or subclass rebuild) is refused.
_TORCH_CALLABLES = _TENSOR_REBUILDS | {'torch._tensor._rebuild_from_type_v2', 'torch.Size',
                                       'torch.device', 'torch.serialization._get_layout'}
# Callables whose argument must be a container already in the pickle (never a tensor to iterate).
_FROM_CONTAINER = frozenset({'builtins.set', 'builtins.frozenset', 'collections.OrderedDict',
                             'collections.Counter', 'torch.Size'})
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def _element_sizes():
    with warnings.catch_warnings():  # the legacy storage classes' dtype warns that they are deprecated
        warnings.simplefilter('ignore')
        return {f'{storage.__module__}.{storage.__name__}': 1 if storage in (
            torch.UntypedStorage, torch.TypedStorage) else storage.dtype.itemsize
            for storage in torch._storage_classes}


_STORAGE_ELEMENT_SIZES = _element_sizes()


class CheckpointStructureError(ValueError):
    """What :func:`scan_checkpoint` refused, in words; the loader adds the file name."""


def _python3_name(module: str, name: str) -> str:
    """``module.name`` as the unpickler resolves it (protocol 2 writes some Python 2 names)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f'{module}.{name}'


class _Node:
    """One object the pickle would build.

    ``kind``: 'const' (``value``), 'global' (``value`` = its name), 'tuple' / 'list' / 'dict' / 'set'
    (``items``), 'storage' (``value`` = (element size, numel, key)), 'call' (``value`` = the callable's
    name), 'mark'. ``size`` counts the nodes it expands to when shared references are copied.
    """
    __slots__ = ('kind', 'value', 'items', 'size')

    def __init__(self, kind, value=None, items=None, size=1):
        self.kind, self.value, self.items, self.size = kind, value, [] if items is None else items, size


_MARK = _Node('mark')


class _PickleScan:
    """Symbolic execution of the opcodes torch's weights_only unpickler accepts."""

    def __init__(self, limits, storage_sizes):
        self.limits = limits
        self.storage_sizes = storage_sizes  # zip: {key: bytes}; legacy: None
        self.stack, self.memo = [], {}
        self.storages = {}  # key: bytes, of every storage the pickle references

    def grow(self, node, by):
        node.size = min(node.size + by, self.limits.max_pickle_nodes + 1)
        if node.size > self.limits.max_pickle_nodes:
            raise CheckpointStructureError(
                f'an object in it expands to more than {self.limits.max_pickle_nodes} nodes once its '
                'shared references are followed (hashing or traversing it would not end in reasonable '
                'time); raise CheckpointLimits.max_pickle_nodes if the file is genuine')

    def new(self, kind, items=(), value=None):
        node = _Node(kind, value, list(items), 1)
        self.grow(node, sum(item.size for item in items))
        return node

    def pop_mark(self):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1:]
                del self.stack[i:]
                return items
        raise CheckpointStructureError('a pickle opcode pops to a mark that was never set')

    def run(self, ops):
        stack = self.stack
        for opcode, arg, _ in ops:
            name = opcode.name
            if name in ('PROTO', 'FRAME'):
                continue
            if name == 'STOP':
                return stack.pop() if stack else None
            if name == 'MARK':
                stack.append(_MARK)
            elif name in ('BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT', 'BINUNICODE',
                          'SHORT_BINSTRING', 'NONE', 'NEWTRUE', 'NEWFALSE'):
                stack.append(_Node('const', arg))
            elif name == 'GLOBAL':
                stack.append(_Node('global', _python3_name(*arg.split(' ', 1))))
            elif name in ('EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT', 'EMPTY_SET'):
                stack.append(_Node(name[6:].lower()))
            elif name == 'TUPLE':
                stack.append(self.new('tuple', self.pop_mark()))
            elif name in ('TUPLE1', 'TUPLE2', 'TUPLE3'):
                n = int(name[-1])
                items = stack[-n:]
                del stack[-n:]
                stack.append(self.new('tuple', items))
            elif name in ('APPEND', 'SETITEM', 'APPENDS', 'SETITEMS'):
                items = self.pop_mark() if name.endswith('S') else [stack.pop() for _ in range(
                    1 if name == 'APPEND' else 2)][::-1]
                target = stack[-1]
                self.check_container(name, target)
                target.items.extend(items)
                self.grow(target, sum(item.size for item in items))
            elif name == 'BUILD':
                state = stack.pop()
                self.check_build(stack[-1], state)
                self.grow(stack[-1], state.size)
            elif name == 'REDUCE':
                args = stack.pop()
                stack[-1] = self.call(stack[-1], args)
            elif name == 'NEWOBJ':
                args = stack.pop()
                stack[-1] = self.new_object(stack[-1], args)
            elif name == 'BINPERSID':
                stack.append(self.storage(stack.pop()))
            elif name in ('BINPUT', 'LONG_BINPUT', 'PUT', 'MEMOIZE'):
                self.memo[len(self.memo) if name == 'MEMOIZE' else arg] = stack[-1]
            elif name in ('BINGET', 'LONG_BINGET', 'GET'):
                if arg not in self.memo:
                    raise CheckpointStructureError(f'a pickle opcode reads memo entry {arg}, never set')
                stack.append(self.memo[arg])
            else:
                raise CheckpointStructureError(f'pickle opcode {name}, which torch.load does not '
                                               'accept with weights_only')
        raise CheckpointStructureError('a pickle without a STOP opcode')

    def storage(self, pid):
        """A persistent id: ('storage', type, key, location, numel[, view metadata])."""
        values = [item.value for item in pid.items] if pid.kind == 'tuple' else None
        if not values or len(values) < 5 or values[0] != 'storage' or pid.items[1].kind != 'global':
            raise CheckpointStructureError('a persistent id that is not a tensor storage')
        type_name, key, numel = values[1], values[2], values[4]
        element_size = _STORAGE_ELEMENT_SIZES.get(type_name)
        if element_size is None or not isinstance(numel, int) or numel < 0:
            raise CheckpointStructureError(f'a storage of type {type_name} with {numel!r} elements')
        nbytes = numel * element_size
        if nbytes > self.limits.max_storage_bytes:
            raise CheckpointStructureError(
                f'a storage of {nbytes} bytes, more than CheckpointLimits.max_storage_bytes')
        if self.storage_sizes is not None and self.storage_sizes.get(str(key)) != nbytes:
            raise CheckpointStructureError(
                f'storage {key} declares {nbytes} bytes but the archive holds '
                f'{self.storage_sizes.get(str(key), "no record")} for it')
        self.storages[key] = nbytes
        view = values[5] if len(values) > 5 else None
        if isinstance(view, tuple):  # legacy views: (view key, offset, view numel)
            numel = pid.items[5].items[2].value
        return _Node('storage', (element_size, numel, key))

    def call(self, func, args):
        """REDUCE: ``func(*args)``."""
        name = self.callable_name(func)
        values = args.items if args.kind == 'tuple' else None
        if values is None:
            raise CheckpointStructureError(f'a call of {name} whose arguments are not a tuple')
        if name == 'builtins.getattr':  # the allow-list's stand-in: a method as a value, never called
            return self.new('call', values, value=name)
        if name.startswith('torch.') and name not in _TORCH_CALLABLES:
            raise CheckpointStructureError(f'a call of {name}, which no OpenMMLab checkpoint contains')
        if name in _VIEW_REBUILDS:
            self.check_view(name, values)
        elif name == 'torch._tensor._rebuild_from_type_v2':
            self.check_rebuild_from_type(values)
        elif name in _FROM_CONTAINER:
            if values and (len(values) > 1 or values[0].kind not in ('tuple', 'list', 'dict')):
                raise CheckpointStructureError(f'{name} of something other than a list, tuple or dict')
        elif name == 'builtins.bytearray':
            if values and (len(values) > 1 or not self.is_bytes(values[0])):
                raise CheckpointStructureError('bytearray of something other than bytes (an integer '
                                               'would allocate that many bytes)')
        elif name == '_codecs.encode':
            # protocol 2 writes bytes as encode(str, 'latin1'); other codecs (hex, base64) expand.
            if not (len(values) == 2 and values[0].kind == 'const' and isinstance(values[0].value, str)
                    and values[1].value in ('latin1', 'latin-1')):
                raise CheckpointStructureError('_codecs.encode other than encode(str, "latin1")')
            return self.new('call', values, value=name)
        elif name == 'numpy.dtype':
            code = values[0].value if values and values[0].kind == 'const' else None
            if code not in NUMPY_DTYPES:
                raise CheckpointStructureError(
                    f'a numpy dtype {code!r}; checkpoints hold numeric dtypes only ({sorted(NUMPY_DTYPES)})')
        elif name.endswith('._reconstruct') and name.rpartition('.')[0] in _NUMPY_MODULES:
            # numpy pickles an empty array of shape (0,) and fills it from BUILD's bytes.
            shape = values[1] if len(values) > 1 else None
            if not (shape is not None and shape.kind == 'tuple' and [i.value for i in shape.items] == [0]):
                raise CheckpointStructureError('numpy _reconstruct of a non-empty shape (numpy writes (0,))')
        return self.new('call', values, value=name)

    def new_object(self, cls, args):
        """NEWOBJ: ``cls.__new__(cls, *args)``."""
        name = self.callable_name(cls)
        if name == 'numpy.ndarray' or (name.startswith('torch.') and name != 'torch.nn.parameter.Parameter'):
            raise CheckpointStructureError(f'{name}.__new__ with arguments from the file, which no '
                                           'OpenMMLab checkpoint contains (it allocates what they say)')
        return self.new('call', [args], value=name)

    @staticmethod
    def check_container(opcode, target):
        """APPEND(S) extend lists; SETITEM(S) fill dicts, OrderedDicts and Counters (as torch checks)."""
        mapping = target.kind == 'dict' or (target.kind == 'call' and target.value in (
            'collections.OrderedDict', 'collections.Counter'))
        if not (target.kind == 'list' if opcode.startswith('APPEND') else mapping):
            raise CheckpointStructureError(f'pickle opcode {opcode} on a {target.kind} '
                                           f'{target.value or ""}'.rstrip())

    def check_build(self, obj, state):
        if obj.kind == 'call' and (obj.value in _TENSOR_REBUILDS
                                   or obj.value == 'torch._tensor._rebuild_from_type_v2'):
            raise CheckpointStructureError('a tensor whose view is reset after it is built '
                                           '(Tensor.set_ from the file)')

    def check_view(self, name, values):
        """(storage, offset, size, stride): the tensor must not show more elements than its storage."""
        if len(values) < 4 or values[0].kind != 'storage':
            raise CheckpointStructureError(f'{name} without a storage')
        _, storage_numel, _ = values[0].value
        offset, size, stride = (self.int_value(values[1]), self.ints(values[2]), self.ints(values[3]))
        if offset is None or size is None or stride is None or len(size) != len(stride) or min(
                [offset, *size, *stride]) < 0:
            raise CheckpointStructureError(f'{name} with offset {offset}, size {size}, stride {stride}')
        numel = math.prod(size)
        if numel and (numel > storage_numel or offset + sum(
                (n - 1) * s for n, s in zip(size, stride)) >= storage_numel):
            raise CheckpointStructureError(
                f'a tensor of size {tuple(size)} and stride {tuple(stride)} over a storage of '
                f'{storage_numel} elements (an expanded or out-of-bounds view)')

    def check_rebuild_from_type(self, values):
        """(func, new_type, args, state): torch calls ``func(*args)``; only a tensor rebuild may be."""
        func, new_type = ([node.value if node.kind == 'global' else f'a {node.kind} built by the pickle'
                           for node in values[:2]] + [None, None])[:2]
        if func not in _TENSOR_REBUILDS or new_type not in ('torch.Tensor', 'torch.nn.parameter.Parameter'):
            raise CheckpointStructureError(
                f'_rebuild_from_type_v2 calling {func} for {new_type}; checkpoints only rebuild tensors '
                'there')
        if len(values) > 2 and func in _VIEW_REBUILDS:
            if values[2].kind != 'tuple':
                raise CheckpointStructureError(f'{func} whose arguments are not a tuple')
            self.check_view(func, values[2].items)

    @staticmethod
    def callable_name(node):
        if node.kind != 'global':
            raise CheckpointStructureError('a call of something that is not a global (e.g. of a '
                                           'method obtained through getattr)')
        return node.value

    @staticmethod
    def is_bytes(node):
        return (node.kind == 'const' and isinstance(node.value, (str, bytes))) or (
            node.kind == 'call' and node.value == '_codecs.encode')

    @staticmethod
    def int_value(node):
        return node.value if node.kind == 'const' and type(node.value) is int else None

    def ints(self, node):
        if node.kind != 'tuple':
            return None
        values = [self.int_value(item) for item in node.items]
        return None if None in values else values


def _scan_pickle(data, limits, storage_sizes=None):
    """Scans one pickle from a bytes object or a binary file positioned at it.

    Returns:
        tuple[_Node, dict]: The root object, and the bytes of each storage it references by key.
    """
    scan = _PickleScan(limits, storage_sizes)
    try:
        return scan.run(pickletools.genops(data)), scan.storages
    except CheckpointStructureError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError, IndexError, KeyError, AttributeError,
            TypeError) as error:  # malformed opcodes or stack: torch's unpickler would fail too
        raise CheckpointStructureError(f'its pickle cannot be parsed ({type(error).__name__}: {error})')


def _scan_zip(file, file_size, limits):
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        for info in members:
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointStructureError(
                    f'member {info.filename} is compressed; torch.save stores members uncompressed, and '
                    'a compressed one can inflate far beyond the file')
            if info.file_size != info.compress_size or info.header_offset + info.file_size > file_size:
                raise CheckpointStructureError(f'member {info.filename} claims {info.file_size} bytes '
                                               f'that the {file_size}-byte file does not hold')
        pickles = [info for info in members if info.filename.endswith('/data.pkl')]
        if len(pickles) != 1:
            raise CheckpointStructureError(f'a zip with {len(pickles)} data.pkl members, not one')
        data_pkl = pickles[0]
        if data_pkl.file_size > limits.max_pickle_bytes:
            raise CheckpointStructureError(
                f'its data.pkl has {data_pkl.file_size} bytes, more than '
                f'CheckpointLimits.max_pickle_bytes ({limits.max_pickle_bytes})')
        prefix = data_pkl.filename[:-len('data.pkl')] + 'data/'
        storage_sizes = {info.filename[len(prefix):]: info.file_size for info in members
                         if info.filename.startswith(prefix)}
        _scan_pickle(archive.read(data_pkl), limits, storage_sizes)


class _BoundedReader(io.RawIOBase):
    """A file whose reads stop with an error past ``limit`` bytes."""

    def __init__(self, file, limit):
        self.file, self.left, self.position = file, limit, 0

    def readable(self):
        return True

    def tell(self):
        return self.position

    def readinto(self, buffer):
        data = self.file.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        self.position += len(data)
        if self.left < 0:
            raise CheckpointStructureError('its pickles are larger than CheckpointLimits.max_pickle_bytes')
        buffer[:len(data)] = data
        return len(data)


def _scan_legacy(file, file_size, limits):
    """The pre-1.6 format: pickles of the magic number, protocol and system info, the object, the
    storage keys; then raw storages, which torch allocates at the sizes the object declares before it
    reads them. torch unpickles the first pickle whatever it is, so it is scanned even when it turns
    out not to be the magic number (a plain ``pickle.dump`` file, which torch then rejects)."""
    reader = io.BufferedReader(_BoundedReader(file, limits.max_pickle_bytes))
    magic, _ = _scan_pickle(reader, limits)
    if magic.kind != 'const' or not isinstance(magic.value, int):
        return
    for _ in range(4):
        _, storages = _scan_pickle(reader, limits)
        if sum(storages.values()) > file_size:
            raise CheckpointStructureError(f'its storages declare {sum(storages.values())} bytes, more '
                                           f'than the {file_size}-byte file holds')


def scan_checkpoint(file, limits=None):
    """Refuse (:class:`CheckpointStructureError`) what no OpenMMLab checkpoint contains.

    Args:
        file (str | BinaryIO): A path or a seekable binary file (left at its start).
        limits (CheckpointLimits, optional): Defaults to :func:`current_limits`.
    """
    limits = limits or current_limits()
    opened = isinstance(file, (str, bytes)) or hasattr(file, '__fspath__')
    handle = open(file, 'rb') if opened else file
    try:
        start = handle.tell()
        file_size = handle.seek(0, io.SEEK_END) - start
        handle.seek(start)
        if handle.read(4) == b'PK\x03\x04':
            handle.seek(start)
            _scan_zip(handle, file_size, limits)
        else:
            handle.seek(start)
            _scan_legacy(handle, file_size, limits)
    except zipfile.BadZipFile as error:
        raise CheckpointStructureError(f'a damaged zip archive ({error})')
    finally:
        if opened:
            handle.close()
        else:
            handle.seek(start)
