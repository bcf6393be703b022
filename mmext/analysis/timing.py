"""Wall-time measurement of code under comparison, and the machine's dense fp32 peak.

Several implementations are timed *interleaved* (A, B, A, B, ...) after warm-up, so that drifts of
the machine (thermal state, other processes) hit all of them alike; the result is summarized by
the median and IQR. On CUDA the device is synchronized before and after every timed call.
"""
import platform
import statistics
import time
from typing import Any, Callable, Dict, List, Mapping, Sequence, Union

import numpy as np
import torch

Device = Union[str, torch.device]


def synchronize(device: Device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Any], device: Device = 'cpu') -> float:
    """Seconds of wall time of one ``fn()``, the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_interleaved(fns: Mapping[str, Callable[[int], Any]], repeats: int, warmup: int = 1,
                     device: Device = 'cpu') -> Dict[str, List[float]]:
    """Time several callables in turns: ``warmup`` untimed rounds, then ``repeats`` timed ones.

    Each round calls every function once, in the order of ``fns`` (A, B, A, B, ...).

    Args:
        fns: name -> function of the round index (0, 1, ...; warm-up rounds are negative, so a
            function that walks through a list of inputs can take ``index % len(inputs)``).
        repeats: timed rounds, >= 1.
        warmup: untimed rounds before them, >= 0.
        device: synchronized around every call.

    Returns:
        name -> ``repeats`` durations in seconds.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'time_interleaved: need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}')
    for index in range(-warmup, 0):
        for fn in fns.values():
            fn(index)
    times = {name: [] for name in fns}
    for index in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed_call(lambda: fn(index), device))
    return times


def summarize(samples: Sequence[float]) -> Dict[str, Any]:
    """Median, quartiles and IQR of a non-empty sample (the quartiles by linear interpolation).

    Returns:
        dict with ``median``, ``q1``, ``q3``, ``iqr``, ``n`` and the ``samples`` themselves.
    """
    if not samples:
        raise ValueError('summarize: no samples')
    q1, q3 = np.percentile(samples, [25, 75])
    return dict(median=statistics.median(samples), q1=float(q1), q3=float(q3), iqr=float(q3 - q1),
                n=len(samples), samples=list(samples))


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when the denominator is 0 (never a ZeroDivisionError)."""
    return numerator / denominator if denominator else float('nan')


def throughput(fn: Callable[[], Any], flops: int, repeats: int = 10,
               device: Device = 'cpu') -> Dict[str, Any]:
    """Median GFLOP/s of ``fn`` (which does ``flops`` FLOPs), after two untimed calls."""
    seconds = time_interleaved({'fn': lambda _: fn()}, repeats, warmup=2, device=device)['fn']
    return dict(gflop=flops / 1e9, repeats=repeats, median_seconds=statistics.median(seconds),
                gflops_per_s=flops / statistics.median(seconds) / 1e9)


def dense_peak_gflops(size: int = 2048, repeats: int = 10, device: Device = 'cpu') -> Dict[str, Any]:
    """This machine's dense fp32 throughput, measured two ways:

    * ``matmul``: (size x size) @ (size x size) with ``torch.mm`` (the BLAS: MKL on CPU, cuBLAS),
      ``2 * size**3`` FLOPs;
    * ``conv3x3``: a 256-channel 3x3 convolution (no bias) of a (1, 256, size/32, size/32) map
      (oneDNN on CPU, cuDNN), ``2 * 256 * 256 * 9 * (size/32)**2`` FLOPs.

    They can differ by 2x: on AMD CPUs with AVX-512, MKL's sgemm runs its AVX2 code while oneDNN's
    convolutions use AVX-512. ``gflops_per_s`` is the larger, the reference for "% of peak".
    """
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    side = max(size // 32, 1)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device)
    x = torch.randn(1, 256, side, side, device=device)
    with torch.no_grad():
        result = dict(
            matmul=dict(size=size, **throughput(lambda: torch.mm(a, b), 2 * size**3, repeats, device)),
            conv3x3=dict(shape=[1, 256, side, side],
                         **throughput(lambda: conv(x), 2 * 256 * 256 * 9 * side**2, repeats, device)))
    result['gflops_per_s'] = max(result['matmul']['gflops_per_s'], result['conv3x3']['gflops_per_s'])
    return result


def environment() -> Dict[str, Any]:
    """What the numbers depend on: versions, threads, CPU and GPU names."""
    cuda = torch.cuda.is_available()
    return dict(torch=torch.__version__, python=platform.python_version(),
                cpu=platform.processor() or platform.machine(), torch_threads=torch.get_num_threads(),
                cuda_available=cuda, gpu=torch.cuda.get_device_name(0) if cuda else None)
