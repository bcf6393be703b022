"""How much one call raises this process's peak resident memory, for the attack probes.

``resource.getrusage(...).ru_maxrss`` cannot serve: Linux keeps it across ``execve``, so a probe started
from a large pytest process begins with the parent's peak, and any attack that stays under it reads as
zero. Writing 5 to ``/proc/self/clear_refs`` resets the peak (``VmHWM``) to the current resident size.
"""
import time
from pathlib import Path

_STATUS = Path('/proc/self/status')
_CLEAR_REFS = Path('/proc/self/clear_refs')


def _status_kib(field):
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1])
    raise RuntimeError(f'{_STATUS} has no {field}')


def measure(call, refusal):
    """Run ``call()`` and report how it ended (a dict): outcome 'loaded', 'refused' where it raised
    ``refusal`` (an exception class), or 'error' for any other exception (MemoryError and the like: what
    an attack achieved); error, the message; seconds; peak_rss_mb_increase, the peak resident size
    during the call minus the resident size before it."""
    _CLEAR_REFS.write_text('5')
    before, start = _status_kib('VmRSS'), time.perf_counter()
    try:
        call()
        outcome, error = 'loaded', ''
    except refusal as exc:
        outcome, error = 'refused', str(exc)
    except BaseException as exc:
        outcome, error = 'error', f'{type(exc).__name__}: {exc}'[:500]
    return dict(outcome=outcome, error=error, seconds=time.perf_counter() - start,
                peak_rss_mb_increase=(_status_kib('VmHWM') - before) / 1024)
