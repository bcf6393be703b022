"""Load OpenMMLab checkpoints with torch's ``weights_only`` unpickler kept on.

torch >= 2.6 makes ``torch.load`` default to ``weights_only=True``, and mmengine 0.10.7 calls it without
the argument, so the checkpoints mmengine writes itself are refused (``message_hub`` pickles
``HistoryBuffer`` objects holding numpy arrays). Instead of switching the restricted unpickler off, mmext
allow-lists exactly the globals that mmengine, mmseg and mmdet checkpoints contain, and only while one of
mmengine's checkpoint loaders runs: ``torch.load`` called anywhere else keeps torch's defaults, and a
pickle that names any other global is still refused.
"""
import _compat_pickle
import functools
import os.path as osp
import pickle
import re

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner.checkpoint import CheckpointLoader

# The only ``getattr(owner, name)`` calls that checkpoints hold: pickle protocol 2 (torch.save's)
# writes a function defined in a class as ``getattr(Class, 'name')``. HistoryBuffer's ``__getstate__``
# saves its class-level table of statistics methods; OneCycleParamScheduler keeps ``anneal_func``.
_PICKLED_METHODS = {
    HistoryBuffer: ('min', 'max', 'current', 'mean'),
    OneCycleParamScheduler: ('_annealing_cos', '_annealing_linear'),
}


def _pickled_method(owner, name):
    """Stands in for ``builtins.getattr``, resolving only the methods in ``_PICKLED_METHODS``.

    The real getattr would let a pickle reach any attribute of any object it can build.
    """
    if name in _PICKLED_METHODS.get(owner, ()):
        return getattr(owner, name)
    allowed = ', '.join(f'{cls.__name__}.{method}'
                        for cls, methods in _PICKLED_METHODS.items() for method in methods)
    raise pickle.UnpicklingError(f'mmext allows builtins.getattr in a checkpoint only for {allowed}, '
                                 f'but the checkpoint asks for getattr({owner!r}, {name!r}).')


# Each entry is a global that a ``GLOBAL`` opcode names in mmengine, mmseg or mmdet checkpoints, or a
# class the unpickler must build although no opcode names it. numpy functions are listed under both
# pickled names: numpy 2 writes ``numpy._core...``, numpy 1.x (the OpenMMLab model zoo)
# ``numpy.core...``.
CHECKPOINT_SAFE_GLOBALS = [
    # ``message_hub.log_scalars`` maps every logged value (loss, lr, time, val metrics) to a
    # HistoryBuffer. Its ``__setstate__`` merges the pickled statistics methods into a class-level
    # table; under this list they can only be its own methods (below) or other callables allowed
    # here or by torch, so a crafted file can at worst break logging, never run code.
    HistoryBuffer,
    (_pickled_method, 'builtins.getattr'),
    # ``param_schedulers`` of OneCycleLR / OneCycleMomentum name it as the owner of ``anneal_func``. A
    # pickle could at most make an inert instance (``__new__`` and a ``__dict__`` update).
    OneCycleParamScheduler,
    # ndarrays: HistoryBuffer's log and count histories.
    (np._core.multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (np._core.multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    np.ndarray,
    # numpy scalars in ``message_hub.runtime_info``: ``eta`` (IterTimerHook) in every training
    # checkpoint; ``best_score`` with CheckpointHook(save_best=...), e.g. mmseg IoUMetric's mIoU.
    (np._core.multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (np._core.multiarray.scalar, 'numpy.core.multiarray.scalar'),
    # Every array and scalar pickles its dtype as ``numpy.dtype(...)`` followed by a BUILD of the
    # instance, whose type since numpy 1.25 is a per-dtype class that the pickle never names.
    np.dtype,
    np.dtypes.Float64DType,  # HistoryBuffer log histories, ``eta``
    np.dtypes.Float32DType,  # float32 metrics as ``best_score`` (mmseg IoUMetric's mIoU)
    np.dtypes.Int64DType,  # HistoryBuffer count histories (MessageHub starts them as np.array([1]))
]

# A wrapped loader carries this attribute, so that installing twice wraps once.
_WRAPPED_MARK = '_mmext_weights_only_scope'

# Patterns of the refusals in torch/_weights_only_unpickler.py (and ``_pickled_method``), each
# capturing what was refused. torch writes builtins without their module (``exec``).
_REFUSAL_PATTERNS = (
    r'Unsupported global: GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+) whose module \S+ is blocked',
    r"allowlisted via `add_safe_globals`,? but got <class '([^']+)'>",
    r'unrecognized function (\S+)',
    r'asks for (getattr\(.*\))\.',
)
# torch refuses globals from these modules even when allow-listed.
_BLOCKED_MODULES = ('os', 'sys', 'posix', 'nt')
# Globals that run or reach arbitrary code: no genuine checkpoint needs them.
_CODE_RUNNING = ('builtins.exec', 'builtins.eval', 'builtins.compile', 'builtins.__import__',
                 'builtins.open', 'builtins.getattr', 'getattr(', 'subprocess.')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """torch's ``weights_only`` unpickler refused a checkpoint that mmengine was asked to load.

    Args:
        filename (str): The checkpoint path or URL given to mmengine.
        refused (list[str]): What was refused, usually globals as ``module.qualname``; empty when
            torch's message names nothing.
        reason (str): torch's own message, which names the first refusal.
    """

    def __init__(self, filename, refused, reason):
        self.filename = filename
        self.refused = refused
        blocked = [name for name in refused if name.split('.')[0] in _BLOCKED_MODULES]
        code_running = [name for name in refused if name.startswith(_CODE_RUNNING)]
        if blocked:
            advice = (f'torch refuses {", ".join(blocked)} even when allow-listed: a checkpoint that '
                      'needs it is almost certainly malicious.')
        elif code_running:
            advice = (f'{", ".join(code_running)} can run arbitrary code: a checkpoint that needs it is '
                      'almost certainly malicious. Do not allow-list it.')
        elif refused:
            module, _, name = refused[0].rpartition('.')
            advice = ('If you trust this file, allow-list exactly what it needs before loading it, e.g. '
                      f'`torch.serialization.add_safe_globals([{name}])` with {name} imported from '
                      f'{module}.')
        else:
            advice = 'If you trust this file, torch\'s message below says what it needs.'
        if refused:
            what = (f'it needs {", ".join(refused)}, which neither torch nor '
                    'mmext.runner.CHECKPOINT_SAFE_GLOBALS allows')
        else:
            what = 'torch\'s weights_only unpickler rejected its content'
        super().__init__(
            f'Refused to load checkpoint {filename}: {what}. mmext keeps torch.load\'s weights_only '
            'unpickler on purpose, because unpickling an arbitrary global can run arbitrary code. '
            f'{advice}\ntorch said: {reason}')


def _python3_name(name: str) -> str:
    """The Python 3 name of a global that pickle protocol <= 2 writes under its Python 2 name (e.g.
    ``commands.Popen`` for ``subprocess.Popen``), as the unpickler resolves it."""
    module, _, attr = name.rpartition('.')
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        return '.'.join(_compat_pickle.NAME_MAPPING[(module, attr)])
    return f'{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{attr}' if module else name


def _refused_globals(filename, message):
    """What torch refused in a checkpoint, as Python 3 names; see :func:`_refused_globals_as_written`."""
    return [_python3_name(name) for name in _refused_globals_as_written(filename, message)]


def _refused_globals_as_written(filename, message):
    """Names what torch refused in a checkpoint.

    torch stops at the first refusal; for a local file a static scan of its pickle (which runs nothing)
    lists every global that is not allowed, so a user who trusts the file sees them all at once.
    """
    if isinstance(filename, str) and osp.isfile(osp.expanduser(filename)):
        try:
            refused = torch.serialization.get_unsafe_globals_in_checkpoint(osp.expanduser(filename))
        except (ValueError, RuntimeError, pickle.UnpicklingError, EOFError):
            refused = []  # not a zip checkpoint: fall back to torch's message
        if refused:
            return sorted(refused)
    for pattern in _REFUSAL_PATTERNS:
        match = re.search(pattern, message)
        if match:
            name = match.group(1)
            return [name if '.' in name or name.startswith('getattr(') else f'builtins.{name}']
    return []


def _weights_only_reason(message):
    """torch's message without its preamble (which suggests ``weights_only=False``) and docs link."""
    message = message.split('\n\nCheck the documentation')[0]
    if 'WeightsUnpickler error: ' in message:
        return message.partition('WeightsUnpickler error: ')[2].strip()
    return message.strip().split('\n\n')[-1].strip()


def _checkpoint_globals_allowed():
    """Allow CHECKPOINT_SAFE_GLOBALS for the duration of a ``with`` block.

    Only the entries not yet allowed are added, because torch's ``safe_globals`` removes on exit
    everything it was given: entries a user had added with ``add_safe_globals`` survive, and a
    nested load leaves the allow-list as it found it. torch keeps one process-wide list, so a
    ``torch.load`` in another thread during the block sees the entries too.
    """
    allowed = set(torch.serialization.get_safe_globals())
    return torch.serialization.safe_globals([g for g in CHECKPOINT_SAFE_GLOBALS if g not in allowed])


def _scope_to_checkpoint_globals(loader):
    """Wraps an mmengine checkpoint loader ``loader(filename, map_location, ...)``."""

    @functools.wraps(loader)  # CheckpointLoader logs the loader's ``__name__``
    def load(filename, *args, **kwargs):
        try:
            with _checkpoint_globals_allowed():
                return loader(filename, *args, **kwargs)
        except UnsafeCheckpointError:
            raise
        except pickle.UnpicklingError as error:
            message = str(error)
            if 'Weights only load failed' not in message:
                raise
            with _checkpoint_globals_allowed():
                refused = _refused_globals(filename, message)
            raise UnsafeCheckpointError(filename, refused, _weights_only_reason(message)) from error

    setattr(load, _WRAPPED_MARK, True)
    return load


def install_safe_checkpoint_loading():
    """Make every scheme of mmengine's ``CheckpointLoader`` load with CHECKPOINT_SAFE_GLOBALS allowed.

    ``load_checkpoint``, ``_load_checkpoint``, ``Runner.load_checkpoint`` (``load_from``,
    tools/test.py) and ``Runner.resume`` all reach ``torch.load`` through
    ``CheckpointLoader.load_checkpoint``, which calls the loader registered for the path's scheme;
    mmengine's public ``register_scheme`` replaces each loader with one that runs inside the
    allow-list. Loaders already wrapped are left alone, so calling this again only wraps schemes
    registered since.
    """
    wrapped = {}
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if getattr(loader, _WRAPPED_MARK, False):
            continue
        if loader not in wrapped:
            wrapped[loader] = _scope_to_checkpoint_globals(loader)
        CheckpointLoader.register_scheme(prefix, wrapped[loader], force=True)
