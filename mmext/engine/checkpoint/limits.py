"""Bounds on what a checkpoint may contain, checked before anything is unpickled.

Every bound is far above what OpenMMLab checkpoints hold (an R101 OCRNet checkpoint with optimizer state
and 40k iterations of logs has a data.pkl of ~2 MB and ~60k pickle nodes) and far below what hurts a
machine. A user who needs more raises one bound for one load, or for a process through the environment:

    from mmext.engine.checkpoint import checkpoint_limits
    with checkpoint_limits(max_pickle_bytes=2**31):
        runner.load_checkpoint(path)

    MMEXT_CHECKPOINT_LIMITS="max_pickle_bytes=2147483648,max_pickle_nodes=100000000" tools/train.py ...
"""
import contextlib
import dataclasses
import threading

from mmext.limits import limits_from_environment

ENV_VAR = 'MMEXT_CHECKPOINT_LIMITS'


@dataclasses.dataclass(frozen=True)
class CheckpointLimits:
    """Args:
        max_pickle_bytes (int): Largest pickle (a zip checkpoint's ``data.pkl``, or a legacy file's
            pickles) mmext unpickles.
        max_pickle_nodes (int): Largest object a pickle may describe, counted as the nodes it has once
            every shared reference is expanded. Hashing or traversing an object costs that many
            steps, so a tuple nested by shared references (a few bytes for 2**100 nodes) is refused
            here rather than hanging the dict insert that would hash it.
        max_storage_bytes (int): Largest tensor storage; storages must also fit in the file.
        max_nesting_depth (int): Deepest nesting of containers. Hashing, comparing, copying and
            printing recurse through it: CPython's tuple hash has no recursion guard, so a key nested
            200,000 deep crashes the process.
        max_equal_hashes (int): Most keys of one dict or set (or elements of a set) that share a hash
            value. Each insert compares against every earlier key with its hash, so n such keys cost
            n**2 / 2 comparisons: integers that are multiples of 2**61 - 1 all hash to 0, and 1.3 MB of
            them take minutes to load. Keys whose hash the scan cannot compute before loading (objects
            built by the pickle, other than numbers, strings and tuples of them) count as one hash.
    """
    max_pickle_bytes: int = 256 * 2**20
    max_pickle_nodes: int = 10**7
    max_storage_bytes: int = 64 * 2**30
    max_nesting_depth: int = 100
    max_equal_hashes: int = 64


_state = threading.local()


def current_limits() -> CheckpointLimits:
    """The bounds in force in this thread: the innermost :func:`checkpoint_limits`, else the
    environment's, else the defaults."""
    stack = getattr(_state, 'stack', None)
    return stack[-1] if stack else limits_from_environment(CheckpointLimits, ENV_VAR)


@contextlib.contextmanager
def checkpoint_limits(**overrides):
    """Raise (or lower) bounds of :class:`CheckpointLimits` for the loads inside the block."""
    limits = dataclasses.replace(current_limits(), **overrides)
    _state.stack = getattr(_state, 'stack', []) + [limits]
    try:
        yield limits
    finally:
        _state.stack = _state.stack[:-1]
