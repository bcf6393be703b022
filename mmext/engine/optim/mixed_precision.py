"""Mixed-precision training on GPUs and on CPUs with bf16 units, under one registered name.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU, NPU, MLU or MUSA, so ``--amp`` fails on every CPU,
although CPUs with AVX512-BF16 or AMX run bf16 matrix products about twice as fast as fp32. Two classes
do the two jobs: mmengine's ``AmpOptimWrapper`` on CUDA (fp16 with dynamic loss scaling, or bf16), and
:class:`CpuBf16OptimWrapper`, an ``OptimWrapper`` that autocasts to bf16 without a loss scaler (bf16 has
fp32's exponent range, so gradients do not underflow the way fp16 ones do). The registered name
``MixedPrecisionOptimWrapper`` (:func:`mixed_precision_optim_wrapper`) builds the one that fits the
device. Mixed precision never silently means fp32: a CPU without bf16 units is refused, naming the
missing feature, unless the config says ``unsupported='fp32'`` (bf16 where the CPU has it, fp32
elsewhere), and the log says which precision was chosen.
"""
import contextlib
import logging
import re
import weakref
from typing import Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .narrow_conv_guard import guard_narrow_strided_convs

# /proc/cpuinfo flags of CPUs whose bf16 matrix products are native: x86 (AVX512-BF16, AMX) and Arm.
CPU_BF16_FLAGS = ('amx_bf16', 'avx512_bf16', 'bf16')
UNSUPPORTED_CHOICES = ('error', 'fp32')


def cpu_bf16_flags(cpuinfo='/proc/cpuinfo'):
    """The bf16 flags this CPU reports (``flags``/``Features`` lines of ``cpuinfo``); empty if none or
    if the file cannot be read."""
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return []
    flags = set()
    for line in re.findall(r'^(?:flags|Features)\s*:(.*)$', text, flags=re.MULTILINE):
        flags.update(line.split())
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


class CpuBf16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` autocasts to bf16 on CPU, without a loss scaler.

    Args:
        unsupported (str): what a CPU without bf16 units gets: 'error' (the default) raises; 'fp32'
            trains in fp32 and logs a warning saying so.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``clip_grad``, ``accumulative_counts``).

    Raises:
        RuntimeError: When the CPU reports none of :data:`CPU_BF16_FLAGS` and ``unsupported`` is 'error'.
    """

    def __init__(self, unsupported: str = 'error', **kwargs):
        if unsupported not in UNSUPPORTED_CHOICES:
            raise ValueError(f'{type(self).__name__}: unsupported={unsupported!r}, expected one of '
                             f'{UNSUPPORTED_CHOICES}')
        super().__init__(**kwargs)
        self._narrow_conv_guarded = weakref.WeakSet()
        flags = cpu_bf16_flags()
        if flags:
            self.precision = 'bf16'
            print_log(f'MixedPrecisionOptimWrapper: bf16 autocast on CPU ({", ".join(flags)}), '
                      'no loss scaling', logger='current')
        elif unsupported == 'fp32':
            self.precision = 'fp32'
            print_log('MixedPrecisionOptimWrapper: this CPU has no bf16 units (/proc/cpuinfo reports '
                      f'none of {", ".join(CPU_BF16_FLAGS)}): training in fp32, as the config allows '
                      "(unsupported='fp32')", logger='current', level=logging.WARNING)
        else:
            raise RuntimeError(
                'mixed precision on CPU trains in bf16, and this CPU has no bf16 units: /proc/cpuinfo '
                f'reports none of the flags {", ".join(CPU_BF16_FLAGS)}. Train in fp32 (without --amp, '
                "with --fp32, or with optim_wrapper.type=OptimWrapper), or on a GPU.")

    def load_state_dict(self, state_dict: dict) -> None:
        """Also loads a GPU run's state: its ``loss_scaler`` entry has nothing to restore into."""
        super().load_state_dict({key: value for key, value in state_dict.items() if key != 'loss_scaler'})

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        if self.precision == 'fp32':
            with super().optim_context(model):
                yield
            return
        if model not in self._narrow_conv_guarded:  # once per model (:mod:`.narrow_conv_guard`)
            guard_narrow_strided_convs(model)
            self._narrow_conv_guarded.add(model)
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@OPTIM_WRAPPERS.register_module(name='MixedPrecisionOptimWrapper')
def mixed_precision_optim_wrapper(loss_scale: Union[str, float, dict] = 'dynamic',
                                  dtype: Optional[Union[str, torch.dtype]] = None,
                                  device: Optional[str] = None, unsupported: str = 'error',
                                  **kwargs) -> OptimWrapper:
    """Mixed precision for the device: ``AmpOptimWrapper`` on CUDA, :class:`CpuBf16OptimWrapper` on CPU.

    Args:
        loss_scale (float | str | dict): CUDA fp16 only, as in ``AmpOptimWrapper``. Defaults to
            'dynamic'.
        dtype (str | torch.dtype, optional): Autocast dtype. CUDA: as ``AmpOptimWrapper`` (None is
            fp16). CPU: None or bfloat16; fp16 is refused (CPU autocast has no loss scaler).
        device (str, optional): 'cuda' or 'cpu'; None picks CUDA when available.
        unsupported (str): CPU only, see :class:`CpuBf16OptimWrapper`.
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``clip_grad``, ``accumulative_counts``;
            ``use_fsdp`` on CUDA).
    """
    if unsupported not in UNSUPPORTED_CHOICES:
        raise ValueError(f'MixedPrecisionOptimWrapper: unsupported={unsupported!r}, expected one of '
                         f'{UNSUPPORTED_CHOICES}')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cpu':
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise ValueError(f'MixedPrecisionOptimWrapper on CPU trains in bfloat16, got dtype={dtype!r}: '
                             'fp16 needs loss scaling, which CPU autocast does not have')
        kwargs.pop('use_fsdp', None)
        return CpuBf16OptimWrapper(unsupported=unsupported, **kwargs)
    wrapper = AmpOptimWrapper(loss_scale=loss_scale, dtype=dtype, **kwargs)
    scaling = 'dynamic loss scaling' if loss_scale == 'dynamic' else f'loss scale {loss_scale}'
    print_log(f'MixedPrecisionOptimWrapper: {wrapper_precision(wrapper)} autocast on {device} '
              f'(AmpOptimWrapper, {scaling})', logger='current')
    return wrapper


def wrapper_precision(wrapper: OptimWrapper) -> str:
    """'bf16', 'fp16' or 'fp32': what the forward passes of ``wrapper`` run in."""
    if isinstance(wrapper, AmpOptimWrapper):
        return 'bf16' if wrapper.cast_dtype == torch.bfloat16 else 'fp16'
    return getattr(wrapper, 'precision', 'fp32')


MIXED_PRECISION_WRAPPERS = ('AmpOptimWrapper', 'MixedPrecisionOptimWrapper')


def optim_wrapper_in(optim_wrapper: dict, precision: str) -> dict:
    """A copy of the ``optim_wrapper`` config that trains in ``precision``.

    'fp32': a mixed-precision wrapper becomes a plain ``OptimWrapper`` (its precision keys dropped).
    'mixed': an ``OptimWrapper`` becomes ``MixedPrecisionOptimWrapper`` with dynamic loss scaling on
    CUDA; a config's own ``MixedPrecisionOptimWrapper`` gets ``unsupported='error'`` (mixed precision
    was asked for, so no fp32 fall-back); ``AmpOptimWrapper`` stays as it is.

    Raises:
        ValueError: for another precision, or 'mixed' on a wrapper type other than these.
    """
    wrapper = dict(optim_wrapper)
    kind = wrapper.get('type', 'OptimWrapper')
    if precision == 'fp32':
        if kind in MIXED_PRECISION_WRAPPERS:
            for key in ('loss_scale', 'dtype', 'device', 'use_fsdp', 'unsupported'):
                wrapper.pop(key, None)
            wrapper['type'] = 'OptimWrapper'
        return wrapper
    if precision != 'mixed':
        raise ValueError(f"precision must be 'fp32' or 'mixed', got {precision!r}")
    if kind == 'MixedPrecisionOptimWrapper':
        wrapper['unsupported'] = 'error'
    elif kind == 'OptimWrapper':
        wrapper.update(type='MixedPrecisionOptimWrapper', loss_scale='dynamic')
    elif kind != 'AmpOptimWrapper':
        raise ValueError(f'mixed precision needs optim_wrapper.type=OptimWrapper, got {kind}')
    return wrapper
