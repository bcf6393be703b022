"""mmengine runner support: checkpoint loading under torch's ``weights_only`` unpickler."""
from .checkpoint import CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError, install_safe_checkpoint_loading

__all__ = ['CHECKPOINT_SAFE_GLOBALS', 'UnsafeCheckpointError', 'install_safe_checkpoint_loading']
