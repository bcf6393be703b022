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
import collections
import gc
import io
import math
import pickle
import struct
import warnings

import numpy as np
import torch
from torch._weights_only_unpickler import _get_allowed_globals

from .limits import current_limits

# dtypes of numpy arrays and scalars in OpenMMLab checkpoints: numbers and booleans only (no void,
# object, string or datetime dtypes, whose item size or content a pickle chooses).
NUMPY_DTYPES = frozenset({'b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8', 'c8',
                          'c16'})
# What numpy pickles as a dtype's state after its byte order, for every dtype above: no subarray, names
# or fields, no item size or alignment of its own. Anything else would restructure or resize it.
_NUMPY_DTYPE_STATE = (None, None, None, -1, -1, 0)
_HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
# Tensor rebuild functions whose first four arguments are (storage, offset, size, stride).
_VIEW_REBUILDS = frozenset({'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2',
                            'torch._utils._rebuild_tensor_v3'})
# Other rebuild functions torch allows that OpenMMLab checkpoints use; they only wrap a tensor.
_WRAPPING_REBUILDS = frozenset({'torch._utils._rebuild_parameter',
                                'torch._utils._rebuild_parameter_with_state',
                                'torch._utils._rebuild_device_tensor_from_cpu_tensor',
                                'torch._utils._rebuild_meta_tensor_no_storage'})
_TENSOR_REBUILDS = _VIEW_REBUILDS | _WRAPPING_REBUILDS
# Callables whose argument must be a container already in the pickle (never a tensor to iterate).
_FROM_CONTAINER = frozenset({'builtins.set', 'builtins.frozenset', 'collections.OrderedDict',
                             'collections.Counter', 'torch.Size'})
_NUMPY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMPY_RECONSTRUCT = frozenset(f'{module}._reconstruct' for module in _NUMPY_MODULES)
# Keys larger than this (in nodes) are not rebuilt to compute their hash; they count as opaque.
_HASHED_KEY_NODES = 64
_OPAQUE = object()


def _element_sizes():
    with warnings.catch_warnings():  # the legacy storage classes' dtype warns that they are deprecated
        warnings.simplefilter('ignore')
        return {f'{storage.__module__}.{storage.__name__}': 1 if storage in (
            torch.UntypedStorage, torch.TypedStorage) else storage.dtype.itemsize
            for storage in torch._storage_classes}


_STORAGE_ELEMENT_SIZES = _element_sizes()


class CheckpointStructureError(ValueError):
    """What :func:`scan_checkpoint` refused, in words; the loader adds the file name."""


def python3_name(module: str, name: str) -> str:
    """``module.name`` as the unpickler resolves a global that pickle protocol 2 writes under its
    Python 2 name (``__builtin__ set``, ``copy_reg _reconstructor``)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f'{module}.{name}'


def global_name(entry) -> str:
    """The name under which torch's unpickler allows an ``add_safe_globals`` entry."""
    if isinstance(entry, tuple):
        return entry[1]
    return f'{entry.__module__}.{entry.__qualname__}'


class _Node:
    """One object the pickle would build.

    ``kind``: 'const' (``value``), 'global' (``value`` = its name), 'tuple' / 'list' / 'dict' / 'set'
    (``items``), 'storage' (``value`` = (element size, numel, key)), 'call' (``value`` = the callable's
    name; ``items`` its arguments, then any state a BUILD gave it). ``size`` counts the nodes it expands
    to when shared references are copied; ``depth`` its nesting as far as built; ``embedded`` whether
    it is an item of another node yet; ``hashes`` counts the hashes of a mapping's keys.
    """
    __slots__ = ('kind', 'value', 'items', 'size', 'depth', 'embedded', 'hashes')

    def __init__(self, kind, value=None, items=None):
        self.kind, self.value, self.items = kind, value, [] if items is None else items
        self.size, self.depth, self.embedded, self.hashes = 1, 1, False, None


class _NotHashed(Exception):
    """A key whose hash the scan does not compute."""


class _Truncated(Exception):
    """The pickle goes on past the bytes the scan was given."""


# The opcodes torch's weights_only unpickler accepts (torch/_weights_only_unpickler.py), as the ints
# the scan compares each byte with.
_OPCODE_NAMES = (
    'MARK', 'STOP', 'PROTO', 'GLOBAL', 'REDUCE', 'NEWOBJ', 'BUILD', 'APPEND', 'APPENDS', 'SETITEM',
    'SETITEMS', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT',
    'EMPTY_SET', 'NONE', 'NEWTRUE', 'NEWFALSE', 'BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT',
    'BINUNICODE', 'SHORT_BINSTRING', 'BINPERSID', 'BINGET', 'LONG_BINGET', 'BINPUT', 'LONG_BINPUT')
(MARK, STOP, PROTO, GLOBAL, REDUCE, NEWOBJ, BUILD, APPEND, APPENDS, SETITEM, SETITEMS, TUPLE, TUPLE1,
 TUPLE2, TUPLE3, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT, EMPTY_SET, NONE, NEWTRUE, NEWFALSE, BININT, BININT1,
 BININT2, LONG1, BINFLOAT, BINUNICODE, SHORT_BINSTRING, BINPERSID, BINGET, LONG_BINGET, BINPUT,
 LONG_BINPUT) = (getattr(pickle, name)[0] for name in _OPCODE_NAMES)
_OP_NAMES = {getattr(pickle, name)[0]: name for name in _OPCODE_NAMES}
# Nodes of the constants a state dict repeats most (small ints, None, booleans), shared by every scan:
# a constant node is never changed once made.
_CONSTANT_OPS = {NONE: _Node('const', None), NEWTRUE: _Node('const', True), NEWFALSE: _Node('const', False)}
_SMALL_INTS = [_Node('const', value) for value in range(256)]
_INT = {BININT: struct.Struct('<i'), BININT2: struct.Struct('<H')}
_UINT4, _FLOAT8 = struct.Struct('<I'), struct.Struct('>d')


class _PickleScan:
    """Symbolic execution of the opcodes torch's weights_only unpickler accepts, read as it reads
    them: nothing is built or called.

    Args:
        limits (CheckpointLimits): The bounds.
        storage_size (Callable[[str], int | None], optional): The bytes the archive holds for a storage
            key (zip format); None for the legacy format, whose storages follow the pickles.
        allowed (set[str]): Globals the unpickler will accept; calls of any other are left to it to
            refuse (with advice on allow-listing).
        trusted (set[str]): Globals the user allow-listed: their calls and states are theirs to judge.
    """

    def __init__(self, limits, storage_size, allowed, trusted):
        self.limits, self.storage_size = limits, storage_size
        self.allowed, self.trusted = allowed, trusted
        self.memo = {}
        self.storages = {}  # key: bytes, of every storage the pickle references
        self.storage_types = {}  # key: (storage type, numel) as first declared, which torch keeps
        # Whether a node grew deeper after it became an item of another: the depths recorded on the
        # way are then lower bounds only, and the final object is walked (check_depth).
        self.depth_stale = False

    def embed(self, target, items):
        """``items`` become items of ``target``: it grows by their sizes and deepens past theirs."""
        size, depth = target.size, target.depth
        for item in items:
            item.embedded = True
            size += item.size
            if item.depth >= depth:
                depth = item.depth + 1
        target.items.extend(items)
        if size > self.limits.max_pickle_nodes:
            raise CheckpointStructureError(
                f'an object in it expands to more than {self.limits.max_pickle_nodes} nodes once its '
                'shared references are followed (hashing or traversing it would not end in reasonable '
                'time); raise CheckpointLimits.max_pickle_nodes if the file is genuine')
        target.size = size
        if depth != target.depth:
            if depth > self.limits.max_nesting_depth:  # a lower bound already too deep
                self.refuse_depth()
            if target.embedded:
                self.depth_stale = True
            target.depth = depth

    def new(self, kind, items=(), value=None):
        node = _Node(kind, value)
        self.embed(node, items)
        return node

    def run(self, data, pos=0):
        """Scan the pickle that starts at ``data[pos]``.

        Returns:
            tuple[_Node, int]: The object it builds, and where it ends.
        """
        stack, metastack, memo, end = [], [], self.memo, len(data)
        while True:
            if pos >= end:
                raise _Truncated
            code = data[pos]
            pos += 1
            # the opcodes of a state dict first, by frequency
            if code == LONG_BINPUT or code == BINPUT:
                if code == BINPUT:
                    key, pos = data[pos], pos + 1
                else:
                    key, pos = _UINT4.unpack_from(data, pos)[0], pos + 4
                memo[key] = stack[-1]
            elif code == BINGET or code == LONG_BINGET:
                if code == BINGET:
                    key, pos = data[pos], pos + 1
                else:
                    key, pos = _UINT4.unpack_from(data, pos)[0], pos + 4
                if key not in memo:
                    raise CheckpointStructureError(f'a pickle opcode reads memo entry {key}, never set')
                stack.append(memo[key])
            elif code == BININT1:
                stack.append(_SMALL_INTS[data[pos]])
                pos += 1
            elif code == MARK:
                metastack.append(stack)
                stack = []
            elif code == TUPLE:
                items, stack = stack, metastack.pop()
                stack.append(self.new('tuple', items))
            elif code == REDUCE:
                args = stack.pop()
                stack[-1] = self.call(stack[-1], args)
            elif code == BINUNICODE:
                size = _UINT4.unpack_from(data, pos)[0]
                pos += 4
                if pos + size > end:
                    raise _Truncated
                stack.append(_Node('const', str(data[pos:pos + size], 'utf-8', 'surrogatepass')))
                pos += size
            elif code == EMPTY_TUPLE or code == EMPTY_LIST or code == EMPTY_DICT or (
                    code == EMPTY_SET):
                stack.append(_Node(_OP_NAMES[code][6:].lower()))
            elif code in _INT:
                stack.append(_Node('const', _INT[code].unpack_from(data, pos)[0]))
                pos += _INT[code].size
            elif code == TUPLE1 or code == TUPLE2 or code == TUPLE3:
                n = code - TUPLE1 + 1
                items = stack[-n:]
                if len(items) != n:
                    raise CheckpointStructureError(f'{_OP_NAMES[code]} on a stack of {len(items)}')
                del stack[-n:]
                stack.append(self.new('tuple', items))
            elif code in _CONSTANT_OPS:
                stack.append(_CONSTANT_OPS[code])
            elif code == BINPERSID:
                stack.append(self.storage(stack.pop()))
            elif code == SETITEMS or code == SETITEM:
                if code == SETITEMS:
                    items, stack = stack, metastack.pop()
                else:
                    items = stack[-2:]
                    del stack[-2:]
                self.check_container('SETITEM', stack[-1])
                if len(items) % 2:
                    raise CheckpointStructureError('SETITEMS with a key and no value')
                self.count_hashes(stack[-1], items[0::2])
                self.embed(stack[-1], items)
            elif code == APPENDS or code == APPEND:
                if code == APPENDS:
                    items, stack = stack, metastack.pop()
                else:
                    items = [stack.pop()]
                self.check_container('APPEND', stack[-1])
                self.embed(stack[-1], items)
            elif code == BUILD:
                state = stack.pop()
                self.check_build(stack[-1], state)
                self.embed(stack[-1], [state])
            elif code == NEWOBJ:
                args = stack.pop()
                stack[-1] = self.new_object(stack[-1], args)
            elif code == GLOBAL:
                module_end = data.find(b'\n', pos)
                name_end = data.find(b'\n', module_end + 1) if module_end >= 0 else -1
                if name_end < 0:
                    raise _Truncated
                module, name = data[pos:module_end], data[module_end + 1:name_end]
                stack.append(_Node('global', python3_name(module.decode('utf-8'), name.decode('utf-8'))))
                pos = name_end + 1
            elif code == BINFLOAT:
                stack.append(_Node('const', _FLOAT8.unpack_from(data, pos)[0]))
                pos += 8
            elif code == LONG1 or code == SHORT_BINSTRING:
                size = data[pos]
                if pos + 1 + size > end:
                    raise _Truncated
                value = data[pos + 1:pos + 1 + size]
                stack.append(_Node('const', int.from_bytes(value, 'little', signed=True)
                                   if code == LONG1 else value.decode('utf-8')))
                pos += 1 + size
            elif code == PROTO:
                pos += 1
            elif code == STOP:
                root = stack.pop()
                if self.depth_stale:
                    self.check_depth(root)
                return root, pos
            else:
                raise CheckpointStructureError(f'pickle opcode {_OP_NAMES.get(code, hex(code))}, which '
                                               'torch.load does not accept with weights_only')

    def check_depth(self, root):
        """Refuse an object graph nested deeper than ``max_nesting_depth`` (iteratively: a recursive
        walk would itself overflow). A container that holds itself counts once."""
        limit, depth, on_path = self.limits.max_nesting_depth, {}, set()
        todo = [(root, False)]
        while todo:
            node, children_done = todo.pop()
            key = id(node)
            if children_done:
                on_path.discard(key)
                depth[key] = 1 + max((depth.get(id(item), 0) for item in node.items), default=0)
                if depth[key] > limit:
                    self.refuse_depth()
            elif key not in depth and key not in on_path:
                on_path.add(key)
                todo.append((node, True))
                todo.extend((item, False) for item in node.items if id(item) not in depth)

    def refuse_depth(self):
        limit = self.limits.max_nesting_depth
        raise CheckpointStructureError(
            f'objects nested more than {limit} deep (hashing, comparing or copying them recurses that '
            'deep); raise CheckpointLimits.max_nesting_depth if the file is genuine')

    def key_value(self, node):
        """The value of a dict key or set element whose hash is predictable (numbers, strings, tuples
        of them, numpy scalars, ``torch.Size``); :class:`_NotHashed` for other keys."""
        if node.kind == 'const':
            return node.value
        if node.kind == 'tuple' and node.size <= _HASHED_KEY_NODES:
            return tuple(self.key_value(item) for item in node.items)
        if node.kind == 'call' and node.size <= _HASHED_KEY_NODES:
            if node.value == 'torch.Size' and node.items:
                return self.key_value(node.items[0])
            if node.value.endswith('.scalar') and node.value.rpartition('.')[0] in _NUMPY_MODULES:
                dtype, data = node.items[:2]
                return np.frombuffer(self.bytes_of(data), dtype=np.dtype(dtype.items[0].value))[0]
        raise _NotHashed

    def count_hashes(self, container, keys):
        """Refuse more than ``max_equal_hashes`` keys with one hash in ``container``."""
        limit = self.limits.max_equal_hashes
        counts = container.hashes = container.hashes or collections.Counter()
        for key in keys:
            try:
                value = hash(self.key_value(key))
            except (_NotHashed, TypeError, ValueError):
                value = _OPAQUE
            counts[value] += 1
            if counts[value] > limit:
                what = ('keys built by the pickle (whose hashes cannot be checked before loading)'
                        if value is _OPAQUE else f'keys with the hash {value}')
                raise CheckpointStructureError(
                    f'a dict or set with more than {limit} {what}: each insert compares against every '
                    'earlier key with that hash, so loading it takes quadratic time; raise '
                    'CheckpointLimits.max_equal_hashes if the file is genuine')

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
        declared = self.storage_types.setdefault(key, (type_name, numel))
        if declared != (type_name, numel):
            # torch allocates and reuses the first declaration; torch.save never writes two
            raise CheckpointStructureError(f'storage {key} declared as {declared} and again as '
                                           f'{(type_name, numel)}')
        if key not in self.storages and self.storage_size is not None:
            record = self.storage_size(str(key))
            if record != nbytes:
                raise CheckpointStructureError(f'storage {key} declares {nbytes} bytes but the archive '
                                               f'holds {"no record" if record is None else record} for it')
        self.storages[key] = nbytes
        view = values[5] if len(values) > 5 else None
        if isinstance(view, tuple):  # legacy views: (view key, offset, view numel)
            numel = pid.items[5].items[2].value
        return _Node('storage', (element_size, numel, key))

    def call(self, func, args):
        """REDUCE: ``func(*args)``. Calls of allowed globals are checked against what checkpoints
        hold; the unpickler itself refuses any global that is not allowed."""
        name = self.callable_name(func)
        if args.kind != 'tuple':
            raise CheckpointStructureError(f'a call of {name} whose arguments are not a tuple')
        values = args.items
        if name in self.trusted or name not in self.allowed:
            return self.new('call', values, value=name)
        check = _CALL_CHECKS.get(name) or (_numpy_call_check(name))
        if check is None:
            raise CheckpointStructureError(f'a call of {name}, which no OpenMMLab checkpoint contains')
        check(self, name, values)
        return self.new('call', values, value=name)

    def new_object(self, cls, args):
        """NEWOBJ: ``cls.__new__(cls, *args)``: OpenMMLab checkpoints create only HistoryBuffers."""
        name = self.callable_name(cls)
        if not (name in self.trusted or name not in self.allowed or (
                name == _HISTORY_BUFFER and args.kind == 'tuple' and not args.items)):
            raise CheckpointStructureError(f'{name}.__new__ with arguments from the file, which no '
                                           'OpenMMLab checkpoint contains')
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
        """BUILD (``__setstate__`` or an update of ``__dict__``) only where checkpoints have it."""
        name = obj.value if obj.kind == 'call' else None
        if name in self.trusted:
            return
        if name == 'numpy.dtype':
            self.check_dtype_state(state)
        elif name in _NUMPY_RECONSTRUCT:
            self.check_array_state(state)
        elif name == _HISTORY_BUFFER:  # its __setstate__ takes known attributes only (message_hub.py)
            if state.kind != 'dict':
                raise CheckpointStructureError(f'a HistoryBuffer whose state is a {state.kind}')
        elif name == 'collections.OrderedDict':  # torch.nn.Module.state_dict's ``_metadata``
            self.check_attributes(collections.OrderedDict, state)
        else:
            raise CheckpointStructureError(
                f'a {name or obj.kind} whose state is set from the file after it is built (e.g. '
                'Tensor.set_ to an arbitrary view), which no OpenMMLab checkpoint contains')

    def check_attributes(self, cls, state):
        """``state`` sets instance attributes: plain names that shadow nothing of ``cls``."""
        if state.kind == 'const' and state.value is None:
            return
        if state.kind != 'dict':
            raise CheckpointStructureError(f'attributes of a {cls.__name__} given as a {state.kind}')
        for key in state.items[0::2]:
            if not (key.kind == 'const' and type(key.value) is str) or hasattr(cls, key.value):
                shown = repr(key.value) if key.kind == 'const' else f'a {key.kind}'
                raise CheckpointStructureError(
                    f'an attribute {shown} set on a {cls.__name__}, which would shadow its own')

    def check_dtype_state(self, state):
        values = [item.value if item.kind == 'const' else item for item in state.items]
        if not (state.kind == 'tuple' and len(values) == 8 and values[0] == 3 and values[1] in '<>|='
                and tuple(values[2:]) == _NUMPY_DTYPE_STATE):
            raise CheckpointStructureError('a numpy dtype whose state gives it fields, a shape or an item '
                                           'size (numeric dtypes have none)')

    def check_array_state(self, state):
        """(version, shape, dtype, is_fortran, data): the data must hold exactly the array."""
        items = state.items if state.kind == 'tuple' else []
        shape = self.ints(items[1]) if len(items) == 5 else None
        dtype = items[2] if shape is not None else None
        if dtype is None or not (dtype.kind == 'call' and dtype.value == 'numpy.dtype') or min(
                shape, default=0) < 0:
            raise CheckpointStructureError('a numpy array state that is not (version, shape, dtype, '
                                           'order, bytes) of a numeric dtype')
        nbytes = math.prod(shape) * np.dtype(dtype.items[0].value).itemsize
        data = self.bytes_of(items[4])
        if data is None or len(data) != nbytes:
            raise CheckpointStructureError(f'a numpy array of shape {tuple(shape)} whose data is not its '
                                           f'{nbytes} bytes')

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

    def check_tensor_state(self, state):
        """The attributes ``_rebuild_from_type_v2`` / ``_rebuild_parameter_with_state`` set on a
        tensor: (dict, slots dict) or dict; none may shadow a tensor attribute."""
        parts = state.items if state.kind == 'tuple' and len(state.items) == 2 else [state]
        for part in parts:
            self.check_attributes(torch.Tensor, part)

    def check_rebuild_from_type(self, name, values):
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
        if len(values) > 3:
            self.check_tensor_state(values[3])

    def check_wrapping_rebuild(self, name, values):
        if name == 'torch._utils._rebuild_parameter_with_state' and len(values) > 3:
            self.check_tensor_state(values[3])

    def check_from_container(self, name, values):
        if not values:
            return
        if len(values) > 1 or values[0].kind not in ('tuple', 'list', 'dict'):
            raise CheckpointStructureError(f'{name} of something other than a list, tuple or dict')
        if values[0].kind == 'dict' or name == 'torch.Size':
            return  # a dict's keys were counted as it was built
        elements = values[0].items
        if name == 'collections.OrderedDict':  # (key, value) pairs
            elements = [pair.items[0] if pair.kind == 'tuple' and pair.items else pair for pair in elements]
        self.count_hashes(_Node('set'), elements)

    def check_bytearray(self, name, values):
        if values and (len(values) > 1 or self.bytes_of(values[0]) is None):
            raise CheckpointStructureError('bytearray of something other than bytes (an integer would '
                                           'allocate that many bytes)')

    def check_encode(self, name, values):
        # protocol 2 writes bytes as encode(str, 'latin1'); other codecs (hex, base64) expand.
        if not (len(values) == 2 and values[0].kind == 'const' and isinstance(values[0].value, str)
                and values[1].value in ('latin1', 'latin-1')):
            raise CheckpointStructureError('_codecs.encode other than encode(str, "latin1")')

    def check_consts(self, name, values):
        """Calls that take a few numbers or strings (torch.device, _get_layout, complex)."""
        if len(values) > 2 or any(value.kind != 'const' for value in values):
            raise CheckpointStructureError(f'{name} of anything but a few numbers or strings')

    def check_dtype(self, name, values):
        code = values[0].value if values and values[0].kind == 'const' else None
        if code not in NUMPY_DTYPES:
            raise CheckpointStructureError(
                f'a numpy dtype {code!r}; checkpoints hold numeric dtypes only ({sorted(NUMPY_DTYPES)})')

    def check_reconstruct(self, name, values):
        # numpy pickles an empty array of shape (0,) and fills it from BUILD's bytes.
        if not (len(values) == 3 and values[0].kind == 'global' and values[0].value == 'numpy.ndarray'
                and self.ints(values[1]) == [0]):
            raise CheckpointStructureError('numpy _reconstruct other than of an empty ndarray of shape '
                                           '(0,) (what numpy writes)')

    def check_scalar(self, name, values):
        dtype = values[0] if len(values) == 2 else None
        if not (dtype is not None and dtype.kind == 'call' and dtype.value == 'numpy.dtype'):
            raise CheckpointStructureError('a numpy scalar of something other than a numeric dtype')
        data = self.bytes_of(values[1])
        if data is None or len(data) != np.dtype(dtype.items[0].value).itemsize:
            raise CheckpointStructureError('a numpy scalar whose data is not one item of its dtype')

    @staticmethod
    def callable_name(node):
        if node.kind != 'global':
            raise CheckpointStructureError('a call of something that is not a global (e.g. of a '
                                           'method obtained through getattr)')
        return node.value

    @staticmethod
    def bytes_of(node):
        """The bytes a node stands for (a string constant, or ``encode(str, 'latin1')``), else None."""
        if node.kind == 'const' and isinstance(node.value, (str, bytes)):
            value = node.value
        elif node.kind == 'call' and node.value == '_codecs.encode':
            value = node.items[0].value
        else:
            return None
        return value.encode('latin1') if isinstance(value, str) else value

    @staticmethod
    def int_value(node):
        return node.value if node.kind == 'const' and type(node.value) is int else None

    def ints(self, node):
        if node.kind != 'tuple':
            return None
        values = [self.int_value(item) for item in node.items]
        return None if None in values else values


def _numpy_call_check(name):
    """numpy's pickled functions, under numpy 2's (``numpy._core``) and numpy 1's module names."""
    module, _, function = name.rpartition('.')
    if module in _NUMPY_MODULES:
        checks = {'_reconstruct': _PickleScan.check_reconstruct, 'scalar': _PickleScan.check_scalar}
        return checks.get(function)
    return None


def _accept(scan, name, values):
    """Calls whose arguments cannot ask for anything: the allow-list's getattr stand-in returns one of
    six methods as a value."""


# The calls OpenMMLab checkpoints contain, each with the check of its arguments; any other call of an
# allowed global (a tensor or storage class, a sparse, nested or quantized rebuild, numpy.ndarray, a
# HistoryBuffer constructor) is refused.
_CALL_CHECKS = {
    **{name: _PickleScan.check_view for name in _VIEW_REBUILDS},
    **{name: _PickleScan.check_wrapping_rebuild for name in _WRAPPING_REBUILDS},
    'torch._tensor._rebuild_from_type_v2': _PickleScan.check_rebuild_from_type,
    **{name: _PickleScan.check_from_container for name in _FROM_CONTAINER},
    'torch.device': _PickleScan.check_consts,
    'torch.serialization._get_layout': _PickleScan.check_consts,
    'builtins.complex': _PickleScan.check_consts,
    'builtins.bytearray': _PickleScan.check_bytearray,
    '_codecs.encode': _PickleScan.check_encode,
    'numpy.dtype': _PickleScan.check_dtype,
    'builtins.getattr': _accept,
}


def _scan_pickle(data, limits, globals_, storage_size=None, start=0):
    """Scans the pickle that starts at ``data[start]``.

    Returns:
        tuple[_Node, dict, int]: The root object, the bytes of each storage it references by key, and
        where the pickle ends.

    Raises:
        _Truncated: The pickle goes on past the end of ``data``.
    """
    scan = _PickleScan(limits, storage_size, *globals_)
    collecting = gc.isenabled()
    gc.disable()  # the scan makes a node per opcode and no garbage: collections would only walk the heap
    try:
        root, end = scan.run(data, start)
    except (CheckpointStructureError, _Truncated):
        raise
    except (ValueError, struct.error, UnicodeDecodeError, IndexError, KeyError, TypeError) as error:
        # malformed opcodes or stack: torch's unpickler would fail too
        raise CheckpointStructureError(f'its pickle cannot be parsed ({type(error).__name__}: {error})')
    finally:
        if collecting:
            gc.enable()
    return root, scan.storages, end


def _check_record_names(records):
    """torch's reader (miniz) looks names up ignoring ASCII case: names that differ only in case make
    which member is read depend on the archive's order, so they are refused, as is a second data.pkl."""
    folded = collections.Counter(name.encode('utf-8', 'surrogateescape').lower() for name in records)
    clashing = sorted(name.decode('utf-8', 'replace') for name, count in folded.items() if count > 1)
    if clashing:
        raise CheckpointStructureError(f'members whose names differ only in case (or repeat): {clashing}')
    pickles = [name for name in folded if name.endswith(b'data.pkl')]
    if len(pickles) != 1:
        raise CheckpointStructureError(f'a zip with {len(pickles)} data.pkl members, not one')


def _scan_zip(file, file_size, limits, globals_):
    """Reads the archive with torch's own reader (``torch._C.PyTorchFileReader``, what ``torch.load``
    uses), so that every size checked and every pickle byte scanned is what torch reads: Python's
    zipfile finds members differently (case-sensitively, and after a shifted central directory)."""
    try:
        reader = torch._C.PyTorchFileReader(file)
        records = reader.get_all_records()
        _check_record_names(records)
        # Every record torch may read (data.pkl, storages, version, byteorder ...) fits in the file,
        # so reading or inflating one allocates at most the file's size. Sizes are kept by the name
        # ignoring case, as torch's reader looks names up (no two differ only in case).
        sizes = {}
        for name in records:
            size = sizes[name.lower()] = reader.get_record_size(name)
            if reader.get_record_offset(name) + size > file_size:
                raise CheckpointStructureError(f'member {name} claims {size} bytes that the {file_size}-byte '
                                               'file does not hold')
        if 'data.pkl' not in sizes:
            raise CheckpointStructureError('a zip without data.pkl')
        if sizes['data.pkl'] > limits.max_pickle_bytes:
            raise CheckpointStructureError(
                f'its data.pkl has {sizes["data.pkl"]} bytes, more than '
                f'CheckpointLimits.max_pickle_bytes ({limits.max_pickle_bytes})')
        data = reader.get_record('data.pkl')
    except RuntimeError as error:  # what torch's reader raises for an archive it cannot read
        raise CheckpointStructureError(f'torch cannot read its archive ({str(error).splitlines()[0]})') \
            from None

    def storage_size(key):
        return sizes.get(f'data/{key}'.lower())

    try:
        _, storages, _ = _scan_pickle(data, limits, globals_, storage_size)
    except _Truncated:
        raise CheckpointStructureError('its data.pkl ends before its STOP opcode') from None
    if sum(storages.values()) > file_size:
        raise CheckpointStructureError(f'its storages declare {sum(storages.values())} bytes, more than '
                                       f'the {file_size}-byte file holds')


def _scan_legacy(file, file_size, limits, globals_):
    """The pre-1.6 format: pickles of the magic number, protocol and system info, the object, the
    storage keys; then raw storages, which torch allocates at the sizes the object declares before it
    reads them. torch unpickles the first pickle whatever it is, so it is scanned even when it turns
    out not to be the magic number (a plain ``pickle.dump`` file, which torch then rejects).

    The pickles are read in a window that grows (to ``max_pickle_bytes`` for all of them together)
    until it holds each one, so a large file's storages are not read.
    """
    start, window, data, position = file.tell(), 2**20, b'', 0
    for index in range(5):
        while True:
            try:
                root, storages, end = _scan_pickle(data, limits, globals_, start=position)
                break
            except _Truncated:
                if len(data) >= min(file_size, limits.max_pickle_bytes):
                    raise CheckpointStructureError(
                        'its pickles end past the end of the file' if len(data) >= file_size else
                        'its pickles are larger than CheckpointLimits.max_pickle_bytes') from None
                window *= 4
                file.seek(start)
                data = file.read(min(window, limits.max_pickle_bytes))
        position = end
        if index == 0 and (root is None or root.kind != 'const' or not isinstance(root.value, int)):
            return  # not the magic number: torch refuses the file after this pickle
        if sum(storages.values()) > file_size:
            raise CheckpointStructureError(f'its storages declare {sum(storages.values())} bytes, more '
                                           f'than the {file_size}-byte file holds')


def _globals_in_force(allowed_globals):
    """(names the unpickler will allow, names the user allow-listed) during a load that adds
    ``allowed_globals`` to torch's and the user's."""
    ours = {global_name(entry) for entry in allowed_globals}
    users = {global_name(entry) for entry in torch.serialization.get_safe_globals()} - ours
    return set(_get_allowed_globals()) | ours | users, users


def scan_checkpoint(file, limits=None, allowed_globals=()):
    """Refuse (:class:`CheckpointStructureError`) what no OpenMMLab checkpoint contains.

    Args:
        file (str | BinaryIO): A path or a seekable binary file (left at its start).
        limits (CheckpointLimits, optional): Defaults to :func:`current_limits`.
        allowed_globals (Sequence): What the load adds to torch's allow-list (``add_safe_globals``
            entries); calls of these are checked like torch's own.
    """
    limits = limits or current_limits()
    globals_ = _globals_in_force(allowed_globals)
    opened = isinstance(file, (str, bytes)) or hasattr(file, '__fspath__')
    handle = open(file, 'rb') if opened else file
    try:
        start = handle.tell()
        file_size = handle.seek(0, io.SEEK_END) - start
        handle.seek(start)
        if handle.read(4) == b'PK\x03\x04':
            handle.seek(start)
            _scan_zip(handle, file_size, limits, globals_)
        else:
            handle.seek(start)
            _scan_legacy(handle, file_size, limits, globals_)
    finally:
        if opened:
            handle.close()
        else:
            handle.seek(start)
