"""Config text stored in checkpoints, read as data and never executed.

mmengine stores the run's config in every checkpoint as Python text (``Config.pretty_text``, in
``meta['cfg']`` and ``message_hub['runtime_info']['cfg']``; older runners wrote ``meta['config']``) and
reads it back with ``Config.fromstring(text, '.py')``, which executes the text and imports the modules its
``custom_imports`` names: a checkpoint made only of strings and tensors passes every unpickling check and
still runs code. mmengine does that in ``Runner.resume`` (for the GPU ids of the previous run) and in
``BaseInferencer._init_model`` (``MMSegInferencer(model=None, weights=...)``, ``DetInferencer``).

Inside :func:`stored_config_as_data`, ``Config.fromstring`` parses the text with :mod:`ast` and accepts
only what ``pretty_text`` writes: assignments of literals, ``dict(key=...)`` and short ``range(...)``
calls and negated numbers. It never executes the text.

The names in it are data too (:func:`check_stored_names`): data that says ``type='os.system'`` runs
``os.system`` when a registry builds it, because mmengine's ``Registry.get`` falls back to importing a
dotted name, and a scope (``_scope_``, ``default_scope``, ``type='pkg.Name'``) imports ``pkg.registry``.
So every name a registry would resolve must already be registered, every scope already imported, and
``custom_imports`` is dropped.
"""
import ast
import contextlib
import functools
import importlib.util
import inspect
import re
import sys
import threading
import warnings

from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.registry import root as root_registries

from .errors import UnsafeCheckpointError

# Longest ``range(...)`` accepted (mmcv-era runners stored ``gpu_ids = range(0, n)``).
_MAX_RANGE = 2**16
# Keys whose string value a registry resolves (``Registry.get``), and keys that name a scope.
_NAME_KEYS = ('type', 'collate_fn', 'constructor', 'runner_type')
_SCOPE_KEYS = ('_scope_', 'default_scope')
# Values the hosts evaluate with ``eval``: mmcv's ``batched_nms`` evaluates ``nms.type`` (a bare name
# runs nothing), mmdet's CameraMotionCompensation its ``warp_mode``.
_EVALUATED = {'nms': ('type', re.compile(r'[A-Za-z_]\w*')),
              'CameraMotionCompensation': ('warp_mode', re.compile(r'cv2\.MOTION_[A-Z]+'))}


class NotPlainData(ValueError):
    """The stored config text is something other than plain data."""


def _literal(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        values = [_literal(item) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](values)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(key): _literal(value) for key, value in zip(node.keys, node.values)}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict'
            and len(node.args) <= 1 and all(keyword.arg is not None for keyword in node.keywords)):
        # pretty_text writes dict(a=1), or dict({1: 'a'}) for keys that are not identifiers
        positional = _literal(node.args[0]) if node.args else {}
        if isinstance(positional, dict):
            return {**positional, **{keyword.arg: _literal(keyword.value) for keyword in node.keywords}}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'range'
            and not node.keywords and 1 <= len(node.args) <= 3):
        # mmcv-era tools stored ``gpu_ids = range(0, 1)``; a longer range would overflow len().
        bounds = [_literal(arg) for arg in node.args]
        if all(type(bound) is int for bound in bounds) and (bounds[-1] != 0 or len(bounds) < 3):
            values = range(*bounds)
            if values.stop - values.start <= _MAX_RANGE * abs(values.step):
                return values
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float, complex)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    raise NotPlainData(f'line {node.lineno}: {type(node).__name__} is not a literal')


def config_text_as_data(text):
    """The top-level names of config text written by ``Config.pretty_text``, as a dict.

    Raises:
        NotPlainData: The text holds anything but ``name = <literal>`` statements.
    """
    try:
        tree = ast.parse(text, mode='exec')
        data = {}
        for statement in tree.body:
            if not (isinstance(statement, ast.Assign)
                    and all(isinstance(target, ast.Name) for target in statement.targets)):
                raise NotPlainData(f'line {statement.lineno}: {type(statement).__name__} is not an '
                                   'assignment of a literal')
            value = _literal(statement.value)
            data.update((target.id, value) for target in statement.targets)
        return data
    except NotPlainData:
        raise
    except Exception as error:  # SyntaxError, RecursionError, an unhashable set item or dict key ...
        raise NotPlainData(f'it is not Python literals ({type(error).__name__})') from None


def _registries():
    """Every registry under mmengine's root registries, with the modules their hosts register from
    (``Registry.locations``, what ``Registry.get`` imports anyway) imported."""
    todo = [value for value in vars(root_registries).values() if isinstance(value, Registry)]
    found = []
    while todo:
        registry = todo.pop()
        registry.import_from_location()
        found.append(registry)
        todo.extend(registry._children.values())
    return found


def _resolves_without_import(name, registries):
    """Whether ``Registry.get(name)`` finds ``name`` registered, in any registry, without importing
    anything a config names: a scope (``pkg.Name``) must be a registry scope already imported, and a
    bare name must not be an importable module (the fallback ``get`` takes when the building registry
    lacks it)."""
    if '.' in name:
        scope, _, key = name.partition('.')  # as Registry.split_scope_key
        return any(registry.scope == scope and key in registry._module_dict for registry in registries)
    return any(name in registry._module_dict for registry in registries) and not (
        name.isidentifier() and importlib.util.find_spec(name) is not None)


def check_stored_names(data):
    """The first name in stored config data that would import code, as (key path, reason), or None.

    Args:
        data (dict): Config data (:func:`config_text_as_data`), without ``custom_imports``.
    """
    registries = _registries()
    scopes = {registry.scope for registry in registries}
    todo = [('', data, None)]
    while todo:
        path, value, parent_key = todo.pop()
        if isinstance(value, (list, tuple)):
            todo.extend((f'{path}[{i}]', item, parent_key) for i, item in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        kind = parent_key if parent_key == 'nms' else value.get('type')
        evaluated_key, pattern = _EVALUATED.get(kind if isinstance(kind, str) else None, (None, None))
        for key, item in value.items():
            where = f'{path}.{key}' if path else str(key)
            if key == evaluated_key:
                if not (isinstance(item, str) and pattern.fullmatch(item)):
                    return where, f'{item!r} is evaluated as Python by the library that reads it'
            elif key in _SCOPE_KEYS and item is not None and item not in scopes:
                return where, f'{item!r} is not a registry scope imported in this process'
            elif key in _NAME_KEYS and (isinstance(item, str) or key == 'type'):
                if not (isinstance(item, str) and _resolves_without_import(item, registries)):
                    return where, f'{item!r} is not a name registered in this process'
            else:
                todo.append((where, item, key))
    return None


_context = threading.local()
_fromstring = Config.fromstring


def _custom_imports(value):
    """The module names of a ``custom_imports`` value, whatever its shape."""
    imports = value.get('imports') if isinstance(value, dict) else value
    if isinstance(imports, (list, tuple)):
        return [str(name) for name in imports]
    return [] if imports is None else [str(imports)]


def _fromstring_as_data(cfg_str, file_format):
    """``Config.fromstring`` while a checkpoint's stored config is read: data only, never executed."""
    on_code = getattr(_context, 'on_code', None)
    if on_code is None:
        return _fromstring(cfg_str, file_format)
    try:
        data = config_text_as_data(cfg_str)
        missing = [name for name in _custom_imports(data.pop('custom_imports', None))
                   if name not in sys.modules]
        if missing:  # modules already imported lose nothing by the drop
            warnings.warn(f'mmext dropped custom_imports {missing} from the config stored in '
                          f'{_context.filename}: it imports nothing a checkpoint names. Import them '
                          'yourself if the model needs them.')
        unsafe = check_stored_names(data)
        if unsafe is not None:
            raise NotPlainData(f'{unsafe[0]}: {unsafe[1]}; resolving it could import and run code')
        try:
            return Config(data)
        except Exception as error:  # e.g. a reserved key
            raise NotPlainData(f'not a config ({type(error).__name__}: {error})') from None
    except NotPlainData as error:
        if on_code == 'ignore':
            warnings.warn(f'mmext ignored the config stored in the checkpoint, which is not plain data '
                          f'({error}); it was not executed. The current config is used.')
            return Config()
        raise UnsafeCheckpointError(_context.filename, f'its stored config is not plain data ({error}); '
                                    'mmext never executes config text from a checkpoint. Pass the '
                                    'config file as `model`.') from None


@contextlib.contextmanager
def stored_config_as_data(filename, on_code):
    """Within the block, ``Config.fromstring`` reads its text as data (see the module docstring).

    Args:
        filename (str): The checkpoint, for error messages.
        on_code (str): What to do with text that is not plain data: 'ignore' (warn and return an empty
            Config) or 'raise' (:class:`UnsafeCheckpointError`).
    """
    saved = getattr(_context, 'on_code', None), getattr(_context, 'filename', None)
    _context.on_code, _context.filename = on_code, filename
    try:
        yield
    finally:
        _context.on_code, _context.filename = saved


def reads_stored_config_as_data(method, on_code, filename_argument):
    """Decorates an mmengine method that parses a checkpoint's stored config (see
    :func:`stored_config_as_data`); ``filename_argument`` names its checkpoint argument."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        filename = signature.bind(*args, **kwargs).arguments.get(filename_argument)
        with stored_config_as_data(filename, on_code):
            return method(*args, **kwargs)

    return wrapper
