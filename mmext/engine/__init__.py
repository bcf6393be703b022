"""mmengine support shared by the seg and det plugins: the checkpoint layer (restricted loading,
atomic saving), the one explicit set of mmengine patches, mixed precision on GPUs and bf16 CPUs,
distributed launches without CUDA, and a hook that stops a run at the first non-finite input or loss.

Importing this package changes nothing in mmengine; :func:`patch_mmengine` does. It is called by what
needs it: importing :mod:`mmext.seg` or :mod:`mmext.det` (or their registration through ``import
mmext``), :func:`build_runner`, and the analysis tools before they load a checkpoint.

``tools/train.py`` and ``tools/test.py`` read their config with :func:`load_config` and call
:func:`setup_distributed` before :func:`build_runner`, and :func:`teardown_distributed` once the run
returned.
"""
from .checkpoint import UnsafeCheckpointError, atomic_write, atomic_write_text, checkpoint_limits
from .dist import cpu_backend, setup_distributed, teardown_distributed
from .channels_last_hook import ChannelsLastHook
from .finite_check_hook import FiniteCheckHook
from .optim import CpuBf16OptimWrapper, cpu_bf16_flags, mixed_precision_optim_wrapper
from .patches import patch_mmengine
from .runner import add_common_args, build_runner, load_analysis_config, load_config

__all__ = ['UnsafeCheckpointError', 'atomic_write', 'atomic_write_text', 'checkpoint_limits', 'cpu_backend',
           'setup_distributed', 'teardown_distributed', 'FiniteCheckHook', 'ChannelsLastHook',
           'patch_mmengine', 'add_common_args', 'load_config', 'load_analysis_config', 'build_runner',
           'CpuBf16OptimWrapper', 'mixed_precision_optim_wrapper', 'cpu_bf16_flags']
