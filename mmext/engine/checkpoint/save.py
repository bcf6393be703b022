"""Crash-safe checkpoints: whenever a training process dies, ``--resume`` finds an intact checkpoint.

mmengine 0.10.7 writes a checkpoint straight to its final path (``open(path, 'wb')`` truncates it
first), then overwrites ``work_dir/last_checkpoint`` the same way, and deletes the checkpoint that
``max_keep_ckpts`` retires *before* saving the new one; ``save_best`` likewise deletes the previous best
checkpoint before writing the new one. A process killed in between leaves a truncated ``iter_N.pth``, an
empty ``last_checkpoint``, with ``max_keep_ckpts=1`` a ``last_checkpoint`` that names a deleted file, or
no complete best checkpoint at all; ``--resume`` then fails or loads the truncated file.

:func:`install_atomic_checkpoint_saving` makes both writes atomic (:func:`atomic_write`) and deletes the
retired checkpoint only after ``last_checkpoint`` names the new one, and the previous best checkpoint
only after the new one and the checkpoint that ``last_checkpoint`` names (whose message hub records the
best) are written. So at every instant ``last_checkpoint`` names a complete checkpoint on disk, and the
best checkpoint that this one records is complete on disk too.
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


def _checkpoint_path(hook: CheckpointHook, filename: str) -> str:
    """Where ``hook`` saves the checkpoint ``filename``."""
    return hook.file_backend.join_path(hook.out_dir, filename)


def _remove_checkpoint(hook: CheckpointHook, path) -> bool:
    """Delete the checkpoint ``path`` (a file, or a directory as DeepSpeed saves); whether it existed."""
    if hook.file_backend.isfile(path):
        hook.file_backend.remove(path)
    elif hook.file_backend.isdir(path):
        hook.file_backend.rmtree(path)
    else:
        return False
    return True


def _save_checkpoint_with_step(self, runner, step, meta):
    """mmengine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``, reordered to be crash-safe.

    Saves the checkpoint (atomically, through ``Runner.save_checkpoint``), then replaces
    ``last_checkpoint`` atomically, then deletes the checkpoint that ``max_keep_ckpts`` retires.
    """
    retired = _retire_step(self, runner, step)
    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = _checkpoint_path(self, ckpt_filename)
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
        _remove_checkpoint(self, _checkpoint_path(self, self.filename_tmpl.format(retired)))


setattr(_save_checkpoint_with_step, _ATOMIC_MARK, True)


def _best_ckpt_keys(hook: CheckpointHook, key_indicator: str):
    """The message-hub keys of ``key_indicator``'s best score and best checkpoint path, as mmengine names
    them (without the indicator when ``save_best`` names one metric)."""
    if len(hook.key_indicators) == 1:
        return 'best_score', 'best_ckpt'
    return f'best_score_{key_indicator}', f'best_ckpt_{key_indicator}'


def _best_ckpt_path(hook: CheckpointHook, key_indicator: str):
    """The path of ``key_indicator``'s best checkpoint so far, or None."""
    if len(hook.key_indicators) == 1:
        return hook.best_ckpt_path
    return hook.best_ckpt_path_dict[key_indicator]


def _set_best_ckpt_path(hook: CheckpointHook, runner, key_indicator: str, path: str) -> None:
    """Record ``path`` as ``key_indicator``'s best checkpoint in the hook and the message hub."""
    if len(hook.key_indicators) == 1:
        hook.best_ckpt_path = path
    else:
        hook.best_ckpt_path_dict[key_indicator] = path
    runner.message_hub.update_info(_best_ckpt_keys(hook, key_indicator)[1], path)


def _beats_best_score(hook: CheckpointHook, runner, key_indicator: str, rule: str, score) -> bool:
    """Whether ``score`` beats ``key_indicator``'s best score so far (the rule's initial value if none)."""
    score_key, _ = _best_ckpt_keys(hook, key_indicator)
    best_score = runner.message_hub.get_info(score_key, hook.init_value_map[rule])
    return score is not None and hook.is_better_than[key_indicator](score, best_score)


def _save_best(hook: CheckpointHook, runner, key_indicator: str, score, step: int, meta) -> None:
    """Save the model (no optimizer, no schedulers) as ``key_indicator``'s best checkpoint at ``step``
    and record it and ``score`` as the best, under mmengine's names; the previous best is left alone."""
    runner.message_hub.update_info(_best_ckpt_keys(hook, key_indicator)[0], score)
    best_ckpt_name = f'best_{key_indicator}_{hook.filename_tmpl.format(step)}'.replace('/', '_')
    # Recorded before saving, so that the best checkpoint's message hub names it, as mmengine's does.
    _set_best_ckpt_path(hook, runner, key_indicator, _checkpoint_path(hook, best_ckpt_name))
    runner.save_checkpoint(
        hook.out_dir, filename=best_ckpt_name, file_client_args=hook.file_client_args, save_optimizer=False,
        save_param_scheduler=False, meta=meta, by_epoch=False, backend_args=hook.backend_args)
    runner.logger.info(f'The best checkpoint with {score:0.4f} {key_indicator} at {step} '
                       f'{"epoch" if hook.by_epoch else "iter"} is saved to {best_ckpt_name}.')


def _save_best_checkpoint(self, runner, metrics) -> None:
    """mmengine 0.10.7's ``CheckpointHook._save_best_checkpoint``, reordered to be crash-safe.

    Saves the new best checkpoint of each ``save_best`` metric that improved (atomically, through
    ``Runner.save_checkpoint``) and then, as mmengine does, the regular checkpoint of this step again, so
    that the one ``last_checkpoint`` names records the new bests; only then deletes the previous best
    checkpoints, which mmengine deletes before saving the new ones. A previous best of the same name as
    the new one is not deleted: the atomic write replaced it.
    """
    if not self.save_best:
        return
    step = runner.epoch if self.by_epoch else runner.iter
    meta = dict(epoch=runner.epoch, iter=runner.iter)
    if 'auto' in self.key_indicators:
        self._init_rule(self.rules, [list(metrics.keys())[0]])
    previous_bests = {}
    for key_indicator, rule in zip(self.key_indicators, self.rules):
        if _beats_best_score(self, runner, key_indicator, rule, metrics[key_indicator]):
            previous_bests[key_indicator] = _best_ckpt_path(self, key_indicator)
            _save_best(self, runner, key_indicator, metrics[key_indicator], step, meta)
    if previous_bests and self.last_ckpt is not None:
        self._save_checkpoint_with_step(runner, step, meta)
    if not is_main_process():
        return
    for key_indicator, previous in previous_bests.items():
        replaced = previous == _best_ckpt_path(self, key_indicator)
        if previous and not replaced and _remove_checkpoint(self, previous):
            runner.logger.info(f'The previous best checkpoint {previous} is removed')


setattr(_save_best_checkpoint, _ATOMIC_MARK, True)


def install_atomic_checkpoint_saving() -> None:
    """Make mmengine's checkpoint saving crash-safe (see the module docstring); idempotent.

    Replaces mmengine's ``save_checkpoint`` in the modules that bind it, and
    ``CheckpointHook._save_checkpoint_with_step`` and ``CheckpointHook._save_best_checkpoint`` (reordered
    copies of mmengine 0.10.7's, which :func:`mmext.engine.patch_mmengine` checks).
    """
    original = mmengine.runner.checkpoint.save_checkpoint
    if not getattr(original, _ATOMIC_MARK, False):
        atomic = _atomic_save_checkpoint(original)
        for module in _SAVE_CHECKPOINT_MODULES:
            module.save_checkpoint = atomic
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    CheckpointHook._save_best_checkpoint = _save_best_checkpoint
