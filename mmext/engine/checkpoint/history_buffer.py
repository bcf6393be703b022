"""``HistoryBuffer`` state restored per instance, never into the class-wide table of statistics.

mmengine 0.10.7's ``HistoryBuffer.__setstate__`` merges the pickled ``statistics_methods`` into
``HistoryBuffer._statistics_methods``, the table every buffer in the process reads: a checkpoint that
maps ``'mean'`` to ``HistoryBuffer.max`` would make every later log report maxima as means, and one that
maps it to any other allowed callable would make every later log call raise.
"""
import pickle

from mmengine.logging.history_buffer import HistoryBuffer


def restore_history_buffer(self, state):
    """``HistoryBuffer.__setstate__`` that accepts only the statistics this process has registered.

    The pickled table (``HistoryBuffer.__getstate__`` saves the class table with every buffer) must map
    each name to the method registered under that name here; the class table is left as it is.

    Raises:
        pickle.UnpicklingError: A pickled name maps to another callable, or to one not registered here.
    """
    state = dict(state)
    pickled = state.pop('statistics_methods', {})
    self._set_default_statistics()
    registered = HistoryBuffer._statistics_methods
    if not isinstance(pickled, dict) or any(
            type(name) is not str or registered.get(name) is not method for name, method in pickled.items()):
        names = sorted(map(str, pickled)) if isinstance(pickled, dict) else type(pickled).__name__
        raise pickle.UnpicklingError(
            f'mmext restores a HistoryBuffer only with the statistics methods registered in this process '
            f'under the same names ({sorted(registered)}); the pickled table ({names}) differs, which '
            'would change how every later log is computed')
    self.__dict__.update(state)
