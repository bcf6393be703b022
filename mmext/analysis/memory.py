"""Peak memory of one call, on CPU and CUDA.

* CPU: the allocations of PyTorch's CPU allocator recorded by the profiler (``profile_memory=True``):
  the peak of the bytes alive among the blocks allocated within the call (frees of older blocks are
  ignored). oneDNN's reorder buffers and scratchpads go through that allocator and count. Python's
  ``tracemalloc`` does not see these allocations, and the process RSS mixes them with the allocator's
  cache, reuse of memory freed earlier, and pages of the imported libraries. Memory that a library
  allocates outside the PyTorch allocator is not counted.
* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus the memory
  allocated before the call (there, frees of older blocks within the call lower the peak a little).
"""
from typing import Any, Callable, List, Sequence, Tuple

import torch
from torch.profiler import ProfilerActivity, profile

from .timing import Device, synchronize


def _cpu_allocations(prof) -> List[Tuple[int, int, int]]:
    """(time ns, address, signed bytes) of every CPU allocation (> 0) and free (< 0) that a profiler
    with ``profile_memory=True`` recorded, in time order (the records torch's own
    ``torch.profiler._memory_profiler`` reads)."""
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        fields = node.extra_fields
        if type(fields).__name__ == '_ExtraFields_Allocation' and fields.device.type == 'cpu':
            events.append((node.start_time_ns, fields.ptr, fields.alloc_size))
    return sorted(events, key=lambda event: event[0])


def peak_of_allocations(events: Sequence[Tuple[int, int, int]]) -> int:
    """Peak of the bytes alive among the blocks allocated in ``events``.

    Frees of blocks allocated before the first event (the profiler also reports those when an
    earlier profiling session saw their allocation) are ignored: they would make the peak of one
    call depend on what earlier calls left behind.

    Args:
        events: (time, address, signed bytes) in time order, as :func:`_cpu_allocations` gives them.
    """
    live, current, peak = {}, 0, 0
    for _, address, nbytes in events:
        if nbytes > 0:
            live[address] = nbytes
            current += nbytes
            peak = max(peak, current)
        elif address in live:
            current -= live.pop(address)
    return peak


def _cpu_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of the CPU allocator's live allocations made within one ``fn()``."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return peak_of_allocations(_cpu_allocations(prof))


def peak_memory_bytes(fn: Callable[[], Any], device: Device = 'cpu') -> int:
    """Bytes of memory that one ``fn()`` needs at its peak beyond what was allocated before it.

    CPU: from the profiler's allocation trace; CUDA: from the caching allocator's statistics (see
    the module docstring). The call is not timed (the profiler slows it down).
    """
    device = torch.device(device)
    if device.type == 'cuda':
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != 'cpu':
        raise ValueError(f'peak_memory_bytes: unsupported device {device}')
    return _cpu_peak_bytes(fn)
