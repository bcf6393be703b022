"""Mixed-precision training on GPUs and on CPUs with bf16 units, under one optim wrapper.

mmengine 0.10.7's ``AmpOptimWrapper`` asserts a GPU, NPU, MLU or MUSA, so ``--amp`` fails on every CPU,
although CPUs with AVX512-BF16 or AMX run bf16 matrix products about twice as fast as fp32.
:class:`MixedPrecisionOptimWrapper` is ``AmpOptimWrapper`` on CUDA (fp16 with dynamic loss scaling, or
bf16), and on CPU autocasts to bf16 without a loss scaler (bf16 has fp32's exponent range, so gradients
do not underflow the way fp16 ones do). It never trains in fp32 under its name: a CPU without bf16
units is refused, naming the missing feature.
"""
import contextlib
import re

import torch
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

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
        **kwargs: ``OptimWrapper``'s arguments (``optimizer``, ``clip_grad``, ``accumulative_counts``).

    Raises:
        RuntimeError: On CPU, when the CPU reports none of :data:`CPU_BF16_FLAGS`.
    """

    def __init__(self, loss_scale='dynamic', dtype=None, device=None, use_fsdp=False, **kwargs):
        self.device_type = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        if self.device_type != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            return
        if dtype not in (None, 'bfloat16', torch.bfloat16):
            raise ValueError(f'MixedPrecisionOptimWrapper on CPU trains in bfloat16, got dtype={dtype!r}: '
                             'fp16 needs loss scaling, which CPU autocast does not have')
        if not cpu_bf16_flags():
            raise RuntimeError(
                'mixed precision on CPU trains in bf16, and this CPU has no bf16 units: /proc/cpuinfo '
                f'reports none of the flags {", ".join(CPU_BF16_FLAGS)}. Train in fp32 (without --amp, '
                'or with optim_wrapper.type=OptimWrapper), or on a GPU.')
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype, self.loss_scaler, self._scale_update_param = torch.bfloat16, None, None
        print_log(f'MixedPrecisionOptimWrapper: bf16 autocast on CPU ({", ".join(cpu_bf16_flags())}), '
                  'no loss scaling', logger='current')

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
        with OptimWrapper.optim_context(self, model), torch.autocast(self.device_type, dtype=self.cast_dtype):
            yield
