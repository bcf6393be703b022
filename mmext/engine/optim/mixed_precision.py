"""Mixed-precision training on GPUs and on CPUs with bf16 units, under one optim wrapper.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU, NPU, MLU or MUSA, so ``--amp`` fails on every CPU,
although CPUs with AVX512-BF16 or AMX run bf16 matrix products about twice as fast as fp32.
:class:`MixedPrecisionOptimWrapper` is ``AmpOptimWrapper`` on CUDA (fp16 with dynamic loss scaling, or
bf16), and on CPU autocasts to bf16 without a loss scaler (bf16 has fp32's exponent range, so gradients
do not underflow the way fp16 ones do). Under ``--amp`` it never trains in fp32: a CPU without bf16
units is refused, naming the missing feature. A recipe that should use bf16 where the CPU has it and
fp32 elsewhere says so with ``unsupported='fp32'``, and the log says which precision was chosen.
"""
import contextlib
import logging
import re
import weakref

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .narrow_conv_guard import guard_narrow_strided_convs

# /proc/cpuinfo flags of CPUs whose bf16 matrix products are native: x86 (AVX512-BF16, AMX) and Arm.
CPU_BF16_FLAGS = ('amx_bf16', 'avx512_bf16', 'bf16')


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


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` on CUDA; bf16 autocast without a loss scaler on CPU.

    Args:
        loss_scale (float | str | dict): CUDA fp16 only, as in ``AmpOptimWrapper``. Defaults to
            'dynamic'.
        dtype (str | torch.dtype, optional): Autocast dtype. CUDA: as ``AmpOptimWrapper`` (None is
            fp16). CPU: None or bfloat16; fp16 is refused (CPU autocast has no loss scaler).
        device (str, optional): 'cuda' or 'cpu'; None picks CUDA when available.
        unsupported (str): what a CPU without bf16 units gets: 'error' (the default, and what
            ``--amp`` asks for) raises; 'fp32' trains in fp32 and logs a warning saying so (the
            embedded recipes: bf16 where the CPU has it).
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``clip_grad``, ``accumulative_counts``).

    Raises:
        RuntimeError: On CPU, when the CPU reports none of :data:`CPU_BF16_FLAGS` and ``unsupported``
            is 'error'.
    """

    def __init__(self, loss_scale='dynamic', dtype=None, device=None, use_fsdp=False,
                 unsupported: str = 'error', **kwargs):
        if unsupported not in ('error', 'fp32'):
            raise ValueError(f"MixedPrecisionOptimWrapper: unsupported={unsupported!r}, expected 'error' or "
                             "'fp32'")
        self.device_type = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        if self.device_type != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            scaling = 'dynamic loss scaling' if loss_scale == 'dynamic' else f'loss scale {loss_scale}'
            print_log(f'MixedPrecisionOptimWrapper: {self.precision} autocast on {self.device_type} '
                      f'(AmpOptimWrapper, {scaling})', logger='current')
            return
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise ValueError(f'MixedPrecisionOptimWrapper on CPU trains in bfloat16, got dtype={dtype!r}: '
                             'fp16 needs loss scaling, which CPU autocast does not have')
        OptimWrapper.__init__(self, **kwargs)
        self.loss_scaler, self._scale_update_param = None, None
        self._narrow_conv_guarded = weakref.WeakSet()
        flags = cpu_bf16_flags()
        if flags:
            self.cast_dtype = torch.bfloat16
            print_log(f'MixedPrecisionOptimWrapper: bf16 autocast on CPU ({", ".join(flags)}), '
                      'no loss scaling', logger='current')
        elif unsupported == 'fp32':
            self.cast_dtype = None
            print_log('MixedPrecisionOptimWrapper: this CPU has no bf16 units (/proc/cpuinfo reports '
                      f'none of {", ".join(CPU_BF16_FLAGS)}): training in fp32, as the config allows '
                      "(unsupported='fp32')", logger='current', level=logging.WARNING)
        else:
            raise RuntimeError(
                'mixed precision on CPU trains in bf16, and this CPU has no bf16 units: /proc/cpuinfo '
                f'reports none of the flags {", ".join(CPU_BF16_FLAGS)}. Train in fp32 (without --amp, '
                "with --fp32, or with optim_wrapper.type=OptimWrapper), or on a GPU.")

    @property
    def precision(self) -> str:
        """'bf16', 'fp16' or 'fp32': what the forward passes run in."""
        dtype = getattr(self, 'cast_dtype', None)
        if self.device_type != 'cpu' and dtype is None:
            return 'fp16'
        return {torch.bfloat16: 'bf16', torch.float16: 'fp16', None: 'fp32'}[dtype]

    def backward(self, loss, **kwargs):
        if self.loss_scaler is not None:
            return super().backward(loss, **kwargs)
        OptimWrapper.backward(self, loss, **kwargs)

    def step(self, **kwargs):
        if self.loss_scaler is not None:
            return super().step(**kwargs)
        OptimWrapper.step(self, **kwargs)

    def state_dict(self):
        return super().state_dict() if self.loss_scaler is not None else OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict):
        """Also loads a GPU run's state on CPU: its ``loss_scaler`` entry has nothing to restore into."""
        if self.loss_scaler is None:
            state_dict = {key: value for key, value in state_dict.items() if key != 'loss_scaler'}
        super().load_state_dict(state_dict)

    @contextlib.contextmanager
    def optim_context(self, model):
        if self.device_type == 'cpu' and self.precision == 'bf16':
            self._guard_narrow_convs(model)
        autocast = (torch.autocast(self.device_type, dtype=self.cast_dtype) if self.precision != 'fp32'
                    else contextlib.nullcontext())
        with OptimWrapper.optim_context(self, model), autocast:
            yield

    def _guard_narrow_convs(self, model):
        """Once per model: its strided convs run in fp32 on inputs narrower than their stride, whose CPU
        bf16 backward is wrong in torch 2.13 (:mod:`.narrow_conv_guard`)."""
        if model not in self._narrow_conv_guarded:
            guard_narrow_strided_convs(model)
            self._narrow_conv_guarded.add(model)


MIXED_PRECISION_WRAPPERS = ('AmpOptimWrapper', 'MixedPrecisionOptimWrapper')


def set_training_precision(cfg, amp: bool = False, fp32: bool = False) -> None:
    """Apply ``tools/train.py``'s ``--amp`` / ``--fp32`` to ``cfg.optim_wrapper`` in place.

    ``--amp``: an ``OptimWrapper`` becomes :class:`MixedPrecisionOptimWrapper` (dynamic loss scale on
    CUDA); a config's own ``MixedPrecisionOptimWrapper`` gets ``unsupported='error'``, since the flag
    asks for mixed precision. ``--fp32``: a mixed-precision wrapper becomes a plain ``OptimWrapper``.
    """
    if amp and fp32:
        raise ValueError('--amp and --fp32 exclude each other')
    wrapper = cfg.optim_wrapper
    if fp32 and wrapper.type in MIXED_PRECISION_WRAPPERS:
        for key in ('loss_scale', 'dtype', 'device', 'use_fsdp', 'unsupported'):
            wrapper.pop(key, None)
        wrapper.type = 'OptimWrapper'
        print_log('--fp32: training in fp32 (OptimWrapper)', logger='current')
    if not amp:
        return
    if wrapper.type == 'MixedPrecisionOptimWrapper':
        wrapper.unsupported = 'error'
    elif wrapper.type == 'AmpOptimWrapper':
        print_log('Mixed precision is already enabled in your config (AmpOptimWrapper).', logger='current',
                  level=logging.WARNING)
    elif wrapper.type != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type=OptimWrapper, got {wrapper.type}')
    else:  # CUDA: fp16 with dynamic loss scaling; CPU: bf16, or an error naming the missing unit
        wrapper.type = 'MixedPrecisionOptimWrapper'
        wrapper.loss_scale = 'dynamic'
