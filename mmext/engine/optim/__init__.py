"""Optimizer wrappers (mmengine ``OPTIM_WRAPPERS``)."""
from .mixed_precision import (CPU_BF16_FLAGS, CpuBf16OptimWrapper, cpu_bf16_flags,
                              mixed_precision_optim_wrapper, optim_wrapper_in, wrapper_precision)
from .narrow_conv_guard import guard_narrow_strided_convs

__all__ = ['CPU_BF16_FLAGS', 'CpuBf16OptimWrapper', 'cpu_bf16_flags', 'mixed_precision_optim_wrapper',
           'optim_wrapper_in', 'wrapper_precision', 'guard_narrow_strided_convs']
