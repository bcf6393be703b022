"""Load checkpoint files one after the other and report, per file, one JSON line: how the load ended,
how long it took and how much it raised the process's peak memory.

    python load_attack.py {mmext,unguarded} FILE [FILE ...]

mmext: mmengine's ``_load_checkpoint`` with mmext imported (what every mmengine path calls).
unguarded: ``torch.load(weights_only=True)`` with mmext's allow-list but without its structure scan
and with mmengine's own HistoryBuffer restore, to show that the files attack something.
After a load, every HistoryBuffer in the message hub is updated once, as a resumed run's first log does.
The caller sets the resource limits and the time-out.
"""
import json
import sys

from peak_memory import measure


def main(mode, files):
    import torch
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmext.engine.checkpoint import UnsafeCheckpointError
    from mmext.engine.checkpoint.allow_list import checkpoint_globals_allowed

    def unguarded(path):
        from mmengine.logging import HistoryBuffer

        def mmengine_setstate(self, state):  # mmengine 0.10.7's HistoryBuffer.__setstate__
            statistics_methods = state.pop('statistics_methods', {})
            self._set_default_statistics()
            self._statistics_methods.update(statistics_methods)
            self.__dict__.update(state)

        HistoryBuffer.__setstate__ = mmengine_setstate
        with checkpoint_globals_allowed():
            return torch.load(path, weights_only=True)

    def first_log(checkpoint):
        hub = checkpoint.get('message_hub') if isinstance(checkpoint, dict) else None
        for buffer in (hub or {}).get('log_scalars', {}).values():
            buffer.update(1.0)

    load = _load_checkpoint if mode == 'mmext' else unguarded
    for path in files:
        print(json.dumps(dict(file=path, **measure(lambda: first_log(load(path)), UnsafeCheckpointError))),
              flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
