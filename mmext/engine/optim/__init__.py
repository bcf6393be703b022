"""Optimizer wrappers (mmengine ``OPTIM_WRAPPERS``)."""
from .mixed_precision import (CPU_BF16_FLAGS, MixedPrecisionOptimWrapper, cpu_bf16_flags,
                              set_training_precision)
from .narrow_conv_guard import guard_narrow_strided_convs

__all__ = ['CPU_BF16_FLAGS', 'MixedPrecisionOptimWrapper', 'cpu_bf16_flags', 'guard_narrow_strided_convs',
           'set_training_precision']
