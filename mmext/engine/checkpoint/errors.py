"""The one error every checkpoint refusal raises."""
import pickle

# torch refuses globals from these modules even when allow-listed.
_BLOCKED_MODULES = ('os', 'sys', 'posix', 'nt')
# Globals that run or reach arbitrary code: no genuine checkpoint needs them.
_CODE_RUNNING = ('builtins.exec', 'builtins.eval', 'builtins.compile', 'builtins.__import__',
                 'builtins.open', 'builtins.getattr', 'getattr(', 'subprocess.')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """mmext refused to load a checkpoint; nothing in it was executed.

    Raised for every refusal: a global outside the allow-list, a structure or size that no OpenMMLab
    checkpoint has (:mod:`mmext.engine.checkpoint.limits`), a cached download whose content does not
    match the hash in its name, a stored config that is not plain data, or a file torch cannot read.

    Args:
        filename (str): The checkpoint path or URL.
        reason (str): Why it was refused.
        refused (Sequence[str]): Globals that were refused, as ``module.qualname``; empty for other
            reasons.
    """

    def __init__(self, filename, reason, refused=()):
        self.filename = str(filename)
        self.reason = reason
        self.refused = list(refused)
        super().__init__(f'Refused to load checkpoint {filename}: {reason}')

    @classmethod
    def for_globals(cls, filename, refused, torch_message):
        """The refusal of torch's ``weights_only`` unpickler, with advice for the globals it named."""
        if not refused:
            return cls(filename, f'torch\'s weights_only unpickler rejected it: {torch_message}')
        blocked = [name for name in refused if name.split('.')[0] in _BLOCKED_MODULES]
        code_running = [name for name in refused if name.startswith(_CODE_RUNNING)]
        if blocked:
            advice = (f'torch refuses {", ".join(blocked)} even when allow-listed: a checkpoint that '
                      'needs it is almost certainly malicious.')
        elif code_running:
            advice = (f'{", ".join(code_running)} can run arbitrary code: a checkpoint that needs it is '
                      'almost certainly malicious. Do not allow-list it.')
        else:
            module, _, name = refused[0].rpartition('.')
            advice = ('If you trust this file, allow-list exactly what it needs before loading it, e.g. '
                      f'`torch.serialization.add_safe_globals([{name}])` with {name} imported from '
                      f'{module}.')
        reason = (f'it needs {", ".join(refused)}, which neither torch nor '
                  'mmext.engine.checkpoint.CHECKPOINT_SAFE_GLOBALS allows. mmext keeps torch.load\'s '
                  'weights_only unpickler on purpose, because unpickling an arbitrary global can run '
                  f'arbitrary code. {advice}\ntorch said: {torch_message}')
        return cls(filename, reason, refused)
