"""The globals OpenMMLab checkpoints need, allowed in torch's ``weights_only`` unpickler while mmext loads.

torch >= 2.6 makes ``torch.load`` default to ``weights_only=True``, and mmengine 0.10.7 calls it without
the argument, so the checkpoints mmengine writes itself are refused (``message_hub`` pickles
``HistoryBuffer`` objects holding numpy arrays). Instead of switching the restricted unpickler off, mmext
allow-lists exactly the globals that mmengine, mmseg and mmdet checkpoints contain, and only while mmext's
loader runs: ``torch.load`` called anywhere else keeps torch's defaults, and a pickle that names any other
global is still refused.
"""
import os.path as osp
import pickle
import re

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler

from .scan import NUMPY_DTYPES, python3_name

# The only ``getattr(owner, name)`` calls that checkpoints hold: pickle protocol 2 (torch.save's)
# writes a function defined in a class as ``getattr(Class, 'name')``. HistoryBuffer's ``__getstate__``
# saves its table of statistics methods; OneCycleParamScheduler keeps ``anneal_func``. The stand-in
# below returns these six functions as *values*; nothing in a load calls them: torch's REDUCE calls only
# allowed globals, and the structure scan (:mod:`.scan`) refuses a pickle that hands a non-global to
# ``_rebuild_from_type_v2``, the one allowed function that calls an argument.
_PICKLED_METHODS = (
    (HistoryBuffer, ('min', 'max', 'current', 'mean')),
    (OneCycleParamScheduler, ('_annealing_cos', '_annealing_linear')),
)


def _pickled_method(owner, name):
    """Stands in for ``builtins.getattr``, resolving only the methods in ``_PICKLED_METHODS``.

    The real getattr would let a pickle reach any attribute of any object it can build. ``owner`` is
    compared by identity: hashing an object built by the pickle could be made to never end.
    """
    for cls, methods in _PICKLED_METHODS:
        if owner is cls and type(name) is str and name in methods:
            return getattr(owner, name)
    allowed = ', '.join(f'{cls.__name__}.{method}' for cls, methods in _PICKLED_METHODS for method in methods)
    shown = repr(owner) if isinstance(owner, type) else f'<{type(owner).__name__} object>'
    raise pickle.UnpicklingError(f'mmext allows builtins.getattr in a checkpoint only for {allowed}, '
                                 f'but the checkpoint asks for getattr({shown}, {name!r}).')


# Each entry is a global that a ``GLOBAL`` opcode names in mmengine, mmseg or mmdet checkpoints, or a
# class the unpickler must build although no opcode names it. numpy functions are listed under both
# pickled names: numpy 2 writes ``numpy._core...``, numpy 1.x (the OpenMMLab model zoo)
# ``numpy.core...``.
CHECKPOINT_SAFE_GLOBALS = [
    # ``message_hub.log_scalars`` maps every logged value (loss, lr, time, val metrics) to a
    # HistoryBuffer. mmext restores its pickled statistics methods per instance and only if they are
    # the ones registered under the same names (:func:`mmext.engine.patches.patch_mmengine`).
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
    # instance, whose type since numpy 1.25 is a per-dtype class that the pickle never names: one per
    # numeric and boolean dtype the structure scan accepts (float64 log histories and ``eta``, float32
    # metrics, int64 / int32 count histories, a hook's np.bool_, a uint8 palette, float16 ...).
    np.dtype,
    *sorted({type(np.dtype(code)) for code in NUMPY_DTYPES}, key=lambda cls: cls.__name__),
]

# Patterns of the refusals in torch/_weights_only_unpickler.py (and ``_pickled_method``), each
# capturing what was refused. torch writes builtins without their module (``exec``).
_REFUSAL_PATTERNS = (
    r'Unsupported global: GLOBAL (\S+) was not an allowed global',
    r'unsupported GLOBAL (\S+) whose module \S+ is blocked',
    r"allowlisted via `add_safe_globals`,? but got <class '([^']+)'>",
    r'unrecognized function (\S+)',
    r'asks for (getattr\(.*\))\.',
)


def refused_globals(filename, message):
    """What torch refused in a checkpoint, as Python 3 names; see :func:`_refused_globals_as_written`."""
    return [python3_name(*name.rpartition('.')[::2]) if '.' in name else name
            for name in _refused_globals_as_written(filename, message)]


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


def weights_only_reason(message):
    """torch's message without its preamble (which suggests ``weights_only=False``) and docs link."""
    message = message.split('\n\nCheck the documentation')[0]
    if 'WeightsUnpickler error: ' in message:
        return message.partition('WeightsUnpickler error: ')[2].strip()
    return message.strip().split('\n\n')[-1].strip()


def checkpoint_globals_allowed():
    """Allow CHECKPOINT_SAFE_GLOBALS for the duration of a ``with`` block.

    Only the entries not yet allowed are added, because torch's ``safe_globals`` removes on exit
    everything it was given: entries a user had added with ``add_safe_globals`` survive, and a
    nested load leaves the allow-list as it found it. torch keeps one process-wide list, so a
    ``torch.load`` in another thread during the block sees the entries too.
    """
    allowed = set(torch.serialization.get_safe_globals())
    return torch.serialization.safe_globals([g for g in CHECKPOINT_SAFE_GLOBALS if g not in allowed])
