"""Crash-safe checkpoints: whenever a training process dies, ``--resume`` finds an intact checkpoint.

mmengine 0.10.7 writes a checkpoint straight to its final path (``open(path, 'wb')`` truncates it
first), then overwrites ``work_dir/last_checkpoint`` the same way, and deletes the checkpoint that
``max_keep_ckpts`` retires *before* saving the new one. A process killed in between leaves a truncated
``iter_N.pth``, an empty ``last_checkpoint`` or, with ``max_keep_ckpts=1``, a ``last_checkpoint`` that
names a deleted file; ``--resume`` then fails or loads the truncated file.

:func:`install_atomic_checkpoint_saving` makes both writes atomic (:func:`atomic_write`) and deletes the
retired checkpoint only after ``last_checkpoint`` names the new one, so at every instant
``last_checkpoint`` names a complete checkpoint on disk.
"""
import contextlib
import os
import os.path as osp
import secrets

import mmengine.runner
import mmengine.runner.checkpoint
import mmengine.runner.runner
import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

# A replaced function or method carries this attribute, so that installing twice replaces once.
_ATOMIC_MARK = '_mmext_atomic'
# The modules that bind mmengine's ``save_checkpoint`` by name (Runner.save_checkpoint calls the one in
# ``mmengine.runner.runner``; CheckpointHook and the strategies import it at call time).
_SAVE_CHECKPOINT_MODULES = (mmengine.runner.checkpoint, mmengine.runner, mmengine.runner.runner)


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    if not hasattr(os, 'O_DIRECTORY'):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write) -> None:
    """Write a file so that ``path`` holds its old content or the complete new one, never a part.

    ``write(f)`` writes the new content into ``f``, a binary file open on a temporary file beside
    ``path`` (``.<name>.<random>.tmp``, so the same file system); the file is flushed, fsync'ed and
    renamed over ``path`` with ``os.replace``, which is atomic, and the directory is fsync'ed so that the
    rename survives a power loss. The new file gets the permissions ``open(path, 'wb')`` would give.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was; a process killed
    before the rename leaves ``path`` as it was and the temporary file behind.
    """
    directory, name = osp.split(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'.{name}.{secrets.token_hex(4)}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 string."""
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def _is_local_file(filename, backend_args=None) -> bool:
    """Whether mmengine would write ``filename`` through its LocalBackend (a local path)."""
    if str(filename).startswith('pavi://'):
        return False
    return isinstance(get_file_backend(filename, backend_args=backend_args), LocalBackend)


def _atomic_save_checkpoint(save_checkpoint):
    """Wraps mmengine's ``save_checkpoint(checkpoint, filename, file_client_args, backend_args)``.

    Local files are written with ``torch.save`` through :func:`atomic_write`; other backends (and the
    deprecated ``file_client_args``) go to mmengine's function.
    """

    def atomic_save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if file_client_args is None and _is_local_file(filename, backend_args):
            atomic_write(filename, lambda f: torch.save(checkpoint, f))
        else:
            save_checkpoint(checkpoint, filename, file_client_args=file_client_args,
                            backend_args=backend_args)

    atomic_save_checkpoint.__doc__ = save_checkpoint.__doc__
    setattr(atomic_save_checkpoint, _ATOMIC_MARK, True)
    return atomic_save_checkpoint


def _retire_step(hook: CheckpointHook, runner, step: int):
    """``max_keep_ckpts`` bookkeeping of CheckpointHook for a checkpoint about to be saved at ``step``.

    Records ``step`` in ``hook.keep_ckpt_ids`` (and the message hub, which the checkpoint stores) and
    returns the step whose checkpoint falls out of the kept ones, or None; mmengine deletes that file
    here, before saving, mmext only after ``last_checkpoint`` names the new checkpoint.
    """
    if hook.max_keep_ckpts <= 0 or (hook.keep_ckpt_ids and hook.keep_ckpt_ids[-1] == step):
        return None  # nothing to keep track of, or the step was recorded already (best + regular)
    retired = hook.keep_ckpt_ids.popleft() if len(hook.keep_ckpt_ids) == hook.max_keep_ckpts else None
    hook.keep_ckpt_ids.append(step)
    runner.message_hub.update_info('keep_ckpt_ids', list(hook.keep_ckpt_ids))
    return retired


def _remove_checkpoint(hook: CheckpointHook, step: int) -> None:
    """Delete the checkpoint of ``step`` (a file, or a directory as DeepSpeed saves), if it exists."""
    path = hook.file_backend.join_path(hook.out_dir, hook.filename_tmpl.format(step))
    if hook.file_backend.isfile(path):
        hook.file_backend.remove(path)
    elif hook.file_backend.isdir(path):
        hook.file_backend.rmtree(path)


def _save_checkpoint_with_step(self, runner, step, meta):
    """mmengine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``, reordered to be crash-safe.

    Saves the checkpoint (atomically, through ``Runner.save_checkpoint``), then replaces
    ``last_checkpoint`` atomically, then deletes the checkpoint that ``max_keep_ckpts`` retires.
    """
    retired = _retire_step(self, runner, step)
    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir, ckpt_filename, self.file_client_args, save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
        backend_args=self.backend_args, **self.args)
    # Model-parallel-like runs would gather sharded states from all ranks; rank 0 writes the rest.
    if not is_main_process():
        return
    atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
    if retired is not None:
        _remove_checkpoint(self, retired)


setattr(_save_checkpoint_with_step, _ATOMIC_MARK, True)


def install_atomic_checkpoint_saving() -> None:
    """Make mmengine's checkpoint saving crash-safe (see the module docstring); idempotent.

    Replaces mmengine's ``save_checkpoint`` in the modules that bind it, and
    ``CheckpointHook._save_checkpoint_with_step`` (a reordered copy of mmengine 0.10.7's, which
    :func:`mmext.engine.patch_mmengine` checks).
    """
    original = mmengine.runner.checkpoint.save_checkpoint
    if not getattr(original, _ATOMIC_MARK, False):
        atomic = _atomic_save_checkpoint(original)
        for module in _SAVE_CHECKPOINT_MODULES:
            module.save_checkpoint = atomic
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
