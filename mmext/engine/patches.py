"""Every change mmext makes to mmengine, installed once by :func:`patch_mmengine`.

Nothing patches on import but :mod:`mmext.seg` and :mod:`mmext.det` (the plugins, which call
:func:`patch_mmengine`, as does :func:`mmext.engine.build_runner`), so ``custom_imports=['mmext.seg']``,
``['mmext']`` and mmext's tools get the same, complete set, and the pure packages none:

1. checkpoint loading: every ``CheckpointLoader`` scheme, ``http(s)`` downloads and the hub cache go
   through one restricted, bounded loader (:mod:`mmext.engine.checkpoint.load`);
2. config text stored in checkpoints is read as data in ``Runner.resume``, ``FlexibleRunner.resume``
   and ``BaseInferencer._init_model`` (:mod:`mmext.engine.checkpoint.stored_config`);
3. ``HistoryBuffer`` state is restored per instance (:mod:`mmext.engine.checkpoint.message_hub`);
4. checkpoint and ``last_checkpoint`` writes are atomic, and ``save_best`` keeps the previous best until
   the new one is written (:mod:`mmext.engine.checkpoint.save`).

Patches 2-4 replace or wrap mmengine 0.10.7 methods whose code they were written against, so another
mmengine version is refused here rather than patched blindly.
"""
import mmengine
from mmengine.infer import BaseInferencer
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import FlexibleRunner, Runner

from .checkpoint.message_hub import restore_history_buffer
from .checkpoint.load import install_checkpoint_loaders
from .checkpoint.save import install_atomic_checkpoint_saving
from .checkpoint.stored_config import _fromstring_as_data, reads_stored_config_as_data

MMENGINE_VERSION = '0.10.7'
_patched = False


def patch_mmengine():
    """Install mmext's mmengine patches (module docstring); calling it again changes nothing.

    Raises:
        RuntimeError: mmengine is not the version the patches were written for.
    """
    global _patched
    if _patched:
        install_checkpoint_loaders()  # schemes registered since the first call
        return
    if mmengine.__version__ != MMENGINE_VERSION:
        raise RuntimeError(
            f'mmext patches mmengine {MMENGINE_VERSION} (safe checkpoint loading, stored configs read as '
            f'data, atomic saving) and found mmengine {mmengine.__version__}; install '
            f'mmengine=={MMENGINE_VERSION} (setup.py pins it)')
    install_checkpoint_loaders()
    mmengine.Config.fromstring = staticmethod(_fromstring_as_data)
    Runner.resume = reads_stored_config_as_data(Runner.resume, 'ignore', 'filename')
    FlexibleRunner.resume = reads_stored_config_as_data(FlexibleRunner.resume, 'ignore', 'filename')
    BaseInferencer._init_model = reads_stored_config_as_data(BaseInferencer._init_model, 'raise', 'weights')
    HistoryBuffer.__setstate__ = restore_history_buffer
    install_atomic_checkpoint_saving()
    _patched = True
