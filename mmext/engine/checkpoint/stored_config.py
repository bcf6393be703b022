"""Config text stored in checkpoints, read as data and never executed.

mmengine stores the run's config in every checkpoint as Python text (``Config.pretty_text``, in
``meta['cfg']`` and ``message_hub['runtime_info']['cfg']``; older runners wrote ``meta['config']``) and
reads it back with ``Config.fromstring(text, '.py')``, which executes the text and imports the modules its
``custom_imports`` names: a checkpoint made only of strings and tensors passes every unpickling check and
still runs code. mmengine does that in ``Runner.resume`` (for the GPU ids of the previous run) and in
``BaseInferencer._init_model`` (``MMSegInferencer(model=None, weights=...)``, ``DetInferencer``).

Inside :func:`stored_config_as_data`, ``Config.fromstring`` parses the text with :mod:`ast` and accepts
only what ``pretty_text`` writes: assignments of literals, ``dict(key=...)`` and ``range(...)`` calls and
negated numbers.
It never executes the text and never imports ``custom_imports``.
"""
import ast
import contextlib
import functools
import inspect
import sys
import threading
import warnings

from mmengine.config import Config

from .errors import UnsafeCheckpointError


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
        # mmcv-era tools stored ``gpu_ids = range(0, 1)``; a range stays lazy whatever its length.
        bounds = [_literal(arg) for arg in node.args]
        if all(type(bound) is int for bound in bounds):
            return range(*bounds)
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float, complex)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    raise NotPlainData(f'line {node.lineno}: {ast.unparse(node)[:80]!r} is not a literal')


def config_text_as_data(text):
    """The top-level names of config text written by ``Config.pretty_text``, as a dict.

    Raises:
        NotPlainData: The text holds anything but ``name = <literal>`` statements.
    """
    try:
        tree = ast.parse(text, mode='exec')
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise NotPlainData(f'it does not parse as Python ({type(error).__name__})') from None
    data = {}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign)
                and all(isinstance(target, ast.Name) for target in statement.targets)):
            raise NotPlainData(f'line {statement.lineno}: {ast.unparse(statement)[:80]!r} is not an '
                               'assignment of a literal')
        value = _literal(statement.value)
        data.update((target.id, value) for target in statement.targets)
    return data


_context = threading.local()
_fromstring = Config.fromstring


def _fromstring_as_data(cfg_str, file_format):
    """``Config.fromstring`` while a checkpoint's stored config is read: data only, never executed."""
    on_code = getattr(_context, 'on_code', None)
    if on_code is None:
        return _fromstring(cfg_str, file_format)
    try:
        data = config_text_as_data(cfg_str)
        imports = (data.get('custom_imports') or {}).get('imports', []) if isinstance(
            data.get('custom_imports'), dict) else []
        missing = [name for name in ([imports] if isinstance(imports, str) else imports)
                   if name not in sys.modules]
        if missing:
            warnings.warn(f'the config stored in {_context.filename} names custom_imports {missing}; mmext '
                          'imports nothing a checkpoint names. Import them yourself if the model needs them.')
        try:
            return Config(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:  # e.g. a reserved key
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
