"""mmengine support shared by the seg and det plugins: crash-safe checkpoint saving, distributed
launches without CUDA, and a hook that stops a run at the first non-finite input or loss.

Importing this package makes mmengine's checkpoint saving atomic (:mod:`mmext.engine.atomic_save`);
``tools/train.py`` and ``tools/test.py`` call :func:`setup_distributed` before building the Runner.
"""
from .atomic_save import atomic_write, atomic_write_text, install_atomic_checkpoint_saving
from .dist import cpu_backend, setup_distributed
from .finite_check_hook import FiniteCheckHook

install_atomic_checkpoint_saving()

__all__ = ['atomic_write', 'atomic_write_text', 'install_atomic_checkpoint_saving', 'cpu_backend',
           'setup_distributed', 'FiniteCheckHook']
