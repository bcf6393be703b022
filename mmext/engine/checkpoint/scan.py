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
import io
import math
import pickletools
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
    name; ``items`` its arguments, then any state a BUILD gave it), 'mark'. ``size`` counts the nodes it
    expands to when shared references are copied; ``depth`` its nesting, as built (a tuple's is final);
    ``hashes`` counts the hashes of a mapping's keys.
    """
    __slots__ = ('kind', 'value', 'items', 'size', 'depth', 'hashes')

    def __init__(self, kind, value=None, items=None, size=1):
        self.kind, self.value, self.items, self.size = kind, value, [] if items is None else items, size
        self.depth, self.hashes = 1, None


_MARK = _Node('mark')


class _NotHashed(Exception):
    """A key whose hash the scan does not compute."""


class _PickleScan:
    """Symbolic execution of the opcodes torch's weights_only unpickler accepts.

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
        self.stack, self.memo = [], {}
        self.storages = {}  # key: bytes, of every storage the pickle references
        self.storage_types = {}  # key: (storage type, numel) as first declared, which torch keeps

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
        if kind == 'tuple' and items:  # immutable: refuse deep nesting as it is built
            node.depth = 1 + max(item.depth for item in items)
            if node.depth > self.limits.max_nesting_depth:
                self.refuse_depth()
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
                root = stack.pop() if stack else None
                if root is not None:
                    self.check_depth(root)
                return root
            if name == 'MARK':
                stack.append(_MARK)
            elif name in ('BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT', 'BINUNICODE',
                          'SHORT_BINSTRING', 'NONE', 'NEWTRUE', 'NEWFALSE'):
                stack.append(_Node('const', arg))
            elif name == 'GLOBAL':
                stack.append(_Node('global', python3_name(*arg.split(' ', 1))))
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
                if name.startswith('SETITEM'):
                    self.count_hashes(target, items[0::2])
                target.items.extend(items)
                self.grow(target, sum(item.size for item in items))
            elif name == 'BUILD':
                state = stack.pop()
                self.check_build(stack[-1], state)
                stack[-1].items.append(state)
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
        elif name is not None and name.endswith('._reconstruct') and name.rpartition('.')[0] in _NUMPY_MODULES:
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
        return {'_reconstruct': _PickleScan.check_reconstruct, 'scalar': _PickleScan.check_scalar}.get(function)
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


def _scan_pickle(data, limits, globals_, storage_size=None):
    """Scans one pickle from a bytes object or a binary file positioned at it.

    Returns:
        tuple[_Node, dict]: The root object, and the bytes of each storage it references by key.
    """
    scan = _PickleScan(limits, storage_size, *globals_)
    try:
        return scan.run(pickletools.genops(data)), scan.storages
    except CheckpointStructureError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError, IndexError, KeyError, AttributeError,
            TypeError) as error:  # malformed opcodes or stack: torch's unpickler would fail too
        raise CheckpointStructureError(f'its pickle cannot be parsed ({type(error).__name__}: {error})')


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
        # so reading or inflating one allocates at most the file's size.
        for name in records:
            size = reader.get_record_size(name)
            if reader.get_record_offset(name) + size > file_size:
                raise CheckpointStructureError(f'member {name} claims {size} bytes that the {file_size}-byte '
                                               'file does not hold')
        if not reader.has_record('data.pkl'):
            raise CheckpointStructureError('a zip without data.pkl')
        pickle_bytes = reader.get_record_size('data.pkl')
        if pickle_bytes > limits.max_pickle_bytes:
            raise CheckpointStructureError(
                f'its data.pkl has {pickle_bytes} bytes, more than '
                f'CheckpointLimits.max_pickle_bytes ({limits.max_pickle_bytes})')
        data = reader.get_record('data.pkl')
    except RuntimeError as error:  # what torch's reader raises for an archive it cannot read
        raise CheckpointStructureError(f'torch cannot read its archive ({str(error).splitlines()[0]})') \
            from None

    def storage_size(key):
        name = f'data/{key}'
        return reader.get_record_size(name) if reader.has_record(name) else None

    _, storages = _scan_pickle(data, limits, globals_, storage_size)
    if sum(storages.values()) > file_size:
        raise CheckpointStructureError(f'its storages declare {sum(storages.values())} bytes, more than '
                                       f'the {file_size}-byte file holds')


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


def _scan_legacy(file, file_size, limits, globals_):
    """The pre-1.6 format: pickles of the magic number, protocol and system info, the object, the
    storage keys; then raw storages, which torch allocates at the sizes the object declares before it
    reads them. torch unpickles the first pickle whatever it is, so it is scanned even when it turns
    out not to be the magic number (a plain ``pickle.dump`` file, which torch then rejects)."""
    reader = io.BufferedReader(_BoundedReader(file, limits.max_pickle_bytes))
    magic, _ = _scan_pickle(reader, limits, globals_)
    if magic is None or magic.kind != 'const' or not isinstance(magic.value, int):
        return
    for _ in range(4):
        _, storages = _scan_pickle(reader, limits, globals_)
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
