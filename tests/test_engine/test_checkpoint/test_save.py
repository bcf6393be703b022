"""Crash and resume: tools/train.py killed with SIGKILL (halfway through writing a checkpoint, and between
two checkpoints) and restarted with ``--resume`` ends exactly where an uninterrupted run ends; and the
atomic checkpoint writes of mmext.engine.atomic_save that make a crash while saving harmless.

The runs train tests/configs/ocr_tiny.py for 6 iterations with a checkpoint every 2 and
``max_keep_ckpts=1``, without dropout: mmengine restores the weights, the optimizer, the schedulers and
the position in the data (it replays the sampler and the pipeline, RandomFlip included), but not
torch's random state, which dropout draws from. Without dropout the resumed run is the uninterrupted one,
number for number. The runs use one thread each: on 2 busy cores, 2 threads made a run 3x slower.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import mmengine.runner
import mmengine.runner.checkpoint
import mmengine.runner.runner
import pytest
import torch
from mmengine.hooks import CheckpointHook
from mmengine.runner.checkpoint import _load_checkpoint

import mmext  # noqa: F401  (checkpoints load under torch's weights_only unpickler)
from mmext.engine import atomic_write, patch_mmengine

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / 'tests/configs/ocr_tiny.py'
CRASH = ROOT / 'tests/scripts/crash_train.py'
OPTIONS = ['train_cfg.max_iters=6', 'train_cfg.val_interval=6', 'default_hooks.checkpoint.max_keep_ckpts=1',
           'model.decode_head.0.dropout_ratio=0', 'model.decode_head.1.dropout_ratio=0']


def _run(command, work_dir, data_root, *train_args):
    """``command`` (tools/train.py, or the crash driver and its flags) on the tiny config."""
    data = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    return subprocess.run(
        [sys.executable, *map(str, command), str(TINY), '--work-dir', str(work_dir), *train_args,
         '--cfg-options', *data, *OPTIONS],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=300)


def _train(work_dir, data_root, *train_args):
    """tools/train.py, which must succeed; returns its log."""
    proc = _run([ROOT / 'tools/train.py'], work_dir, data_root, *train_args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _crash(crash_flags, work_dir, data_root, *train_args):
    """The crash driver, which must die of SIGKILL; returns its log."""
    proc = _run([CRASH, *crash_flags], work_dir, data_root, *train_args)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _state(work_dir):
    """What a crash left: the files, what ``last_checkpoint`` names, the sizes of temporary files."""
    return dict(files=sorted(p.name for p in work_dir.iterdir() if p.is_file()),
                last_checkpoint=Path((work_dir / 'last_checkpoint').read_text()).name,
                temp_sizes=[p.stat().st_size for p in work_dir.glob('.*.tmp')])


def _records(work_dir):
    """The scalars.json records of every run in ``work_dir``, one list per run, oldest first."""
    return [[json.loads(line) for line in path.read_text().splitlines()]
            for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json'))]


def _losses(records):
    return {r['iter']: r['loss'] for r in records if 'loss' in r}


def _metrics(records):
    (val,) = [r for r in records if 'mIoU' in r]
    return val['mIoU'], val['mBIoU']


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, data_root):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    _train(work_dir, data_root)
    (records,) = _records(work_dir)
    return records


@pytest.fixture(scope='module')
def crashed(tmp_path_factory, data_root):
    """Run 1 dies halfway through writing iter_4.pth; run 2 resumes and dies right after iteration 5
    (iter_4.pth written, iter_6.pth not yet); run 3 resumes and finishes."""
    work_dir = tmp_path_factory.mktemp('crashed')
    _crash(['--while-saving', 'iter_4.pth'], work_dir, data_root)
    while_saving = _state(work_dir)
    second_log = _crash(['--after-iter', '5'], work_dir, data_root, '--resume')
    between = _state(work_dir)
    final_log = _train(work_dir, data_root, '--resume')
    return dict(work_dir=work_dir, while_saving=while_saving, between=between, second_log=second_log,
                final_log=final_log, runs=_records(work_dir))


def test_crash_while_saving_leaves_the_previous_checkpoint_as_latest(crashed):
    state = crashed['while_saving']
    # Half of iter_4.pth reached the disk, in a temporary file only; iter_2.pth, which
    # max_keep_ckpts=1 retires once iter_4.pth is saved, is still there and still the latest.
    assert len(state['temp_sizes']) == 1 and state['temp_sizes'][0] > 0
    assert 'iter_4.pth' not in state['files'] and 'iter_2.pth' in state['files']
    assert state['last_checkpoint'] == 'iter_2.pth'
    assert re.search(r'Auto resumed from the latest checkpoint \S+/iter_2\.pth', crashed['second_log'])


def test_sigkill_between_checkpoints_resumes_from_the_last_one(crashed):
    state = crashed['between']
    assert state['last_checkpoint'] == 'iter_4.pth'
    assert 'iter_4.pth' in state['files'] and 'iter_2.pth' not in state['files']  # retired after saving
    assert re.search(r'Auto resumed from the latest checkpoint \S+/iter_4\.pth', crashed['final_log'])


def test_resumed_runs_continue_at_the_checkpoint_and_finish_all_iterations(crashed):
    first, second, third = ([r['iter'] for r in run if 'loss' in r] for run in crashed['runs'])
    # Run 1 trained and logged iteration 4 before it died saving iter_4.pth, so run 2 redoes 3 and 4.
    assert (first, second, third) == ([1, 2, 3, 4], [3, 4, 5], [5, 6])
    final = _load_checkpoint(str(crashed['work_dir'] / 'iter_6.pth'))
    assert final['meta']['iter'] == 6
    assert sorted(p.name for p in crashed['work_dir'].glob('iter_*.pth')) == ['iter_6.pth']


def test_resumed_run_equals_the_uninterrupted_run(crashed, uninterrupted):
    expected = _losses(uninterrupted)
    assert sorted(expected) == [1, 2, 3, 4, 5, 6]
    for run in crashed['runs']:
        for it, loss in _losses(run).items():
            assert loss == pytest.approx(expected[it], rel=1e-6, abs=0), f'iteration {it}'
    assert _metrics(crashed['runs'][-1]) == _metrics(uninterrupted)


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'old content')
    atomic_write(path, lambda f: f.write(b'new'))
    assert path.read_bytes() == b'new'
    assert os.listdir(tmp_path) == ['f.bin']  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open(path, 'wb') creates it


def test_atomic_write_that_fails_leaves_the_old_file(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(b'old content')

    def write_then_fail(f):
        f.write(b'half of the new')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(path, write_then_fail)
    assert path.read_bytes() == b'old content'
    assert os.listdir(tmp_path) == ['f.bin']


def test_failed_checkpoint_save_keeps_the_previous_checkpoint(tmp_path):
    path = str(tmp_path / 'iter_2.pth')
    mmengine.runner.save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)
    unpicklable = threading.Lock()
    with pytest.raises(TypeError, match='pickle'):  # torch.save fails midway
        mmengine.runner.save_checkpoint({'state_dict': {'w': torch.zeros(3)}, 'bad': unpicklable}, path)
    assert torch.equal(_load_checkpoint(path)['state_dict']['w'], torch.ones(3))
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_mmengine_saves_through_mmext(tmp_path):
    patch_mmengine()  # a second install changes nothing
    saves = {mmengine.runner.checkpoint.save_checkpoint, mmengine.runner.save_checkpoint,
             mmengine.runner.runner.save_checkpoint}
    assert len(saves) == 1 and getattr(saves.pop(), '_mmext_atomic')
    assert getattr(CheckpointHook._save_checkpoint_with_step, '_mmext_atomic')
