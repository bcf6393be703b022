"""Optimizer wrappers (mmengine ``OPTIM_WRAPPERS``)."""
from .mixed_precision import (CPU_BF16_FLAGS, MixedPrecisionOptimWrapper, cpu_bf16_flags,
                              set_training_precision)

__all__ = ['CPU_BF16_FLAGS', 'MixedPrecisionOptimWrapper', 'cpu_bf16_flags', 'set_training_precision']
