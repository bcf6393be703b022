"""Checkpoints: one restricted loader for every path mmengine loads from, and crash-safe saving.

- :mod:`.load`: :func:`load_checkpoint_file` and the ``CheckpointLoader`` schemes routed through it;
- :mod:`.scan`: the structure check that runs before anything is unpickled, bounded by :mod:`.limits`;
- :mod:`.allow_list`: the globals OpenMMLab checkpoints need;
- :mod:`.stored_config`: config text stored in a checkpoint is read as data, never executed;
- :mod:`.message_hub`: message-hub and HistoryBuffer state restored as data;
- :mod:`.save`: atomic checkpoint and ``last_checkpoint`` writes; ``save_best`` keeps the previous best
  until the new one is written.

:func:`mmext.engine.patch_mmengine` installs them into mmengine.
"""
from .allow_list import CHECKPOINT_SAFE_GLOBALS
from .errors import UnsafeCheckpointError
from .limits import CheckpointLimits, checkpoint_limits, current_limits
from .load import load_checkpoint_file, load_url, verify_hash_in_name
from .save import atomic_write, atomic_write_text
from .stored_config import config_text_as_data

__all__ = ['CHECKPOINT_SAFE_GLOBALS', 'UnsafeCheckpointError', 'CheckpointLimits', 'checkpoint_limits',
           'current_limits', 'load_checkpoint_file', 'load_url', 'verify_hash_in_name', 'atomic_write',
           'atomic_write_text', 'config_text_as_data']
