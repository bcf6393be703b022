"""Message-hub state from checkpoints restored as data: known attributes, known types, nothing that
changes how this process logs.

mmengine 0.10.7's ``HistoryBuffer.__setstate__`` updates the instance ``__dict__`` with whatever the
pickle holds and merges the pickled ``statistics_methods`` into ``HistoryBuffer._statistics_methods``,
the table every buffer in the process reads: a checkpoint that maps ``'mean'`` to ``HistoryBuffer.max``
would make every later log report maxima as means; an ``update`` attribute would shadow the method and
stop the run at its first iteration; a state without ``_log_history`` would stop it at the next log.
``MessageHub.load_state_dict`` deep-copies ``runtime_info`` values and keeps ``log_scalars`` as loaded.
"""
import pickle
from collections.abc import Mapping

import numpy as np
from mmengine.logging.history_buffer import HistoryBuffer

# What HistoryBuffer.__getstate__ saves: its ``__dict__`` and the class table of statistics methods.
_HISTORY_BUFFER_DATA = frozenset({'max_length', '_log_history', '_count_history'})
_HISTORY_BUFFER_STATE = _HISTORY_BUFFER_DATA | {'statistics_methods'}
# Types of ``runtime_info`` values (eta, best_score, keep_ckpt_ids, the config text ...).
_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, np.generic)
_PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset)


def _history_problem(state):
    """Why ``state`` is not a HistoryBuffer's data, or None."""
    if not isinstance(state, dict) or not set(state) <= _HISTORY_BUFFER_STATE or not (
            _HISTORY_BUFFER_DATA <= set(state)):
        names = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        return f'its attributes are {names}, not {sorted(_HISTORY_BUFFER_STATE)}'
    max_length, logs, counts = state['max_length'], state['_log_history'], state['_count_history']
    if type(max_length) is not int or max_length < 1:
        return f'max_length is {max_length!r}'
    for name, history in (('_log_history', logs), ('_count_history', counts)):
        if type(history) is not np.ndarray or history.ndim != 1 or history.dtype.kind not in 'biufc' or (
                not history.flags.c_contiguous):  # a stride-0 view would be expanded by the next update
            return f'{name} is not a contiguous 1-d numeric numpy array'
    if len(logs) != len(counts) or len(logs) > max_length:
        return f'histories of {len(logs)} and {len(counts)} values for max_length {max_length}'
    return None


def restore_history_buffer(self, state):
    """``HistoryBuffer.__setstate__`` that restores the buffer's data and nothing else.

    The pickled table (``HistoryBuffer.__getstate__`` saves the class table with every buffer) must map
    each name to the method registered under that name here; the class table is left as it is.

    Raises:
        pickle.UnpicklingError: Other attributes, types or statistics methods than a HistoryBuffer has.
    """
    problem = _history_problem(state)
    if problem is not None:
        raise pickle.UnpicklingError(f'mmext restores a HistoryBuffer from its data only, and {problem}')
    pickled = state.get('statistics_methods', {})
    self._set_default_statistics()
    registered = HistoryBuffer._statistics_methods
    if not isinstance(pickled, dict) or any(
            type(name) is not str or registered.get(name) is not method for name, method in pickled.items()):
        names = sorted(map(str, pickled)) if isinstance(pickled, dict) else type(pickled).__name__
        raise pickle.UnpicklingError(
            f'mmext restores a HistoryBuffer only with the statistics methods registered in this process '
            f'under the same names ({sorted(registered)}); the pickled table ({names}) differs, which '
            'would change how every later log is computed')
    self.__dict__.update({name: state[name] for name in _HISTORY_BUFFER_DATA})


def _impure(value):
    """The first value inside ``value`` that is not plain data (numbers, strings, numpy scalars and
    arrays, containers of them), or None. Iterative: nesting depth is bounded by the structure scan,
    and shared references are visited once."""
    todo, seen = [value], set()
    while todo:
        item = todo.pop()
        if isinstance(item, _PLAIN_SCALARS) or (type(item) is np.ndarray and item.dtype.kind in 'biufc'):
            continue
        if not isinstance(item, _PLAIN_CONTAINERS):
            return item
        if id(item) not in seen:
            seen.add(id(item))
            todo.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
    return None


def message_hub_problem(checkpoint):
    """Why a loaded checkpoint's ``message_hub`` (or ``meta``'s counters) is not what mmengine saves,
    or None: ``log_scalars`` maps names to HistoryBuffers, ``runtime_info`` names to plain data,
    ``resumed_keys`` names to booleans; ``meta['epoch']`` and ``meta['iter']`` are counts."""
    if not isinstance(checkpoint, Mapping):
        return None
    meta = checkpoint.get('meta')
    if meta is not None and not isinstance(meta, Mapping):
        return f"meta is a {type(meta).__name__}"
    for counter in ('epoch', 'iter'):
        value = (meta or {}).get(counter)
        if value is not None and (type(value) is not int or value < 0):
            return f'meta[{counter!r}] is {value!r}, not a count'
    hub = checkpoint.get('message_hub')
    if hub is None:
        return None
    if not isinstance(hub, Mapping) or not all(isinstance(hub.get(key), Mapping) for key in (
            'log_scalars', 'runtime_info', 'resumed_keys')):
        return 'message_hub is not three mappings (log_scalars, runtime_info, resumed_keys)'
    for part, expected in (('log_scalars', HistoryBuffer), ('resumed_keys', bool)):
        for key, value in hub[part].items():
            if type(key) is not str or type(value) is not expected:
                return (f'message_hub[{part!r}][{key!r}] is a {type(value).__name__}, '
                        f'not a {expected.__name__}')
    for key, value in hub['runtime_info'].items():
        impure = _impure(value) if type(key) is str else key
        if impure is not None:
            return (f"message_hub['runtime_info'][{key!r}] holds a {type(impure).__name__}, where mmengine "
                    'keeps plain data')
    return None
