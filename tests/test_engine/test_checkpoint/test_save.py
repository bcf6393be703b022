"""Crash and resume: tools/train.py killed with SIGKILL (halfway through writing a checkpoint, and between
two checkpoints) and restarted with ``--resume`` ends exactly where an uninterrupted run ends; a run killed
while it replaces its best checkpoint keeps a complete one; and the atomic checkpoint writes of
mmext.engine.atomic_save that make a crash while saving harmless.

The runs train tests/configs/ocr_tiny.py for 6 iterations with a checkpoint every 2 and
``max_keep_ckpts=1``, without dropout: mmengine restores the weights, the optimizer, the schedulers and
the position in the data (it replays the sampler and the pipeline, RandomFlip included), but not
torch's random state, which dropout draws from. Without dropout the resumed run is the uninterrupted one,
number for number. The runs use one thread each: on 2 busy cores, 2 threads made a run 3x slower.

The ``save_best`` runs validate every 2 iterations; the tiny run's mIoU rises at each validation, so each
one saves a new best checkpoint and deletes the previous one.
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
BEST = ['train_cfg.val_interval=2', 'default_hooks.checkpoint.save_best=mIoU']
# Two best checkpoints, one per rule: mIoU's moves on at every validation, mAcc's ('less') stays at 2.
TWO_BESTS = ['train_cfg.val_interval=2', 'default_hooks.checkpoint.save_best=[mIoU,mAcc]',
             'default_hooks.checkpoint.rule=[greater,less]',
             'default_hooks.checkpoint.published_keys=state_dict']


def _run(command, work_dir, data_root, *train_args, options=()):
    """``command`` (tools/train.py, or the crash driver and its flags) on the tiny config, with ``options``
    added to the test's cfg-options."""
    data = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    return subprocess.run(
        [sys.executable, *map(str, command), str(TINY), '--work-dir', str(work_dir), *train_args,
         '--cfg-options', *data, *OPTIONS, *options],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=300)


def _train(work_dir, data_root, *train_args, options=(), command=(ROOT / 'tools/train.py',)):
    """tools/train.py (or ``command``), which must succeed; returns its log."""
    proc = _run(command, work_dir, data_root, *train_args, options=options)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _crash(crash_flags, work_dir, data_root, *train_args, options=()):
    """The crash driver, which must die of SIGKILL; returns its log."""
    proc = _run([CRASH, *crash_flags], work_dir, data_root, *train_args, options=options)
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


def _bests(work_dir):
    """The names of the best checkpoints in ``work_dir`` (published copies included)."""
    return sorted(p.name for p in Path(work_dir).glob('best_*.pth'))


def _recorded_best(work_dir):
    """The best checkpoint recorded by the checkpoint that ``last_checkpoint`` names (what --resume
    restores), and that checkpoint's step."""
    latest = _load_checkpoint((Path(work_dir) / 'last_checkpoint').read_text())
    return Path(latest['message_hub']['runtime_info']['best_ckpt']), latest['meta']['iter']


# Where a run replacing best_mIoU_iter_2.pth by best_mIoU_iter_4.pth can die, what it leaves on disk, and
# which best the checkpoint that last_checkpoint names records: mmext writes the new best, re-saves
# iter_4.pth (which records it), then deletes the old best.
OLD_BEST, NEW_BEST = 'best_mIoU_iter_2.pth', 'best_mIoU_iter_4.pth'
BEST_KILLS = {
    'while writing the new best': (['--while-saving', NEW_BEST], [OLD_BEST], OLD_BEST),
    'after writing the new best': (['--after-saving', NEW_BEST], [OLD_BEST, NEW_BEST], OLD_BEST),
    'before deleting the old best': (['--before-removing', OLD_BEST], [OLD_BEST, NEW_BEST], NEW_BEST),
}


@pytest.mark.parametrize('kill', BEST_KILLS)
def test_crash_while_replacing_the_best_checkpoint_keeps_a_complete_one(kill, tmp_path, data_root):
    flags, left, recorded = BEST_KILLS[kill]
    _crash(flags, tmp_path, data_root, options=BEST)
    assert _bests(tmp_path) == left
    for name in left:
        assert _load_checkpoint(str(tmp_path / name))['meta']['iter'] == int(Path(name).stem.rsplit('_')[-1])
    best, step = _recorded_best(tmp_path)
    assert (best.name, step) == (recorded, 4) and best.is_file()
    # The resumed run records and keeps only its own best; a best that the crash left unrecorded stays.
    log = _train(tmp_path, data_root, '--resume', options=BEST)
    assert re.search(r'Auto resumed from the latest checkpoint \S+/iter_4\.pth', log)
    assert _bests(tmp_path) == sorted({*left, 'best_mIoU_iter_6.pth'} - {recorded})
    assert _recorded_best(tmp_path) == (tmp_path / 'best_mIoU_iter_6.pth', 6)


def test_mmengine_alone_loses_the_best_checkpoint_in_that_crash(tmp_path, data_root):
    _crash(['--stock-save-best', '--while-saving', NEW_BEST], tmp_path, data_root, options=BEST)
    # mmengine deleted the old best before writing the new one, which never reached its name.
    assert _bests(tmp_path) == []
    assert not _recorded_best(tmp_path)[0].exists()


@pytest.fixture(scope='module')
def two_bests(tmp_path_factory, data_root):
    """A run with two ``save_best`` metrics and published checkpoints, with mmext and with mmengine's own
    ``_save_best_checkpoint``: ``{'mmext': (work_dir, log), 'mmengine': (work_dir, log)}``."""
    runs = {}
    for name, command in (('mmext', [ROOT / 'tools/train.py']), ('mmengine', [CRASH, '--stock-save-best'])):
        work_dir = tmp_path_factory.mktemp(name)
        runs[name] = work_dir, _train(work_dir, data_root, options=TWO_BESTS, command=command)
    return runs


def _as_mmengine_names(text, work_dir):
    """``text`` without the run's work_dir, and without the hash in published checkpoints' names, which
    changes from run to run (it hashes a pickle that holds storage addresses)."""
    return re.sub(r'-[0-9a-f]{8}\.pth', '-<sha>.pth', str(text).replace(str(work_dir), '<work_dir>'))


def _best_log(log, work_dir):
    """The log lines about best and published checkpoints, without time stamps, in sorted order (mmext
    logs a deletion after the save that mmengine logs it before)."""
    lines = re.findall(r' - INFO - (.*(?:best checkpoint|published to).*)', log)
    return sorted(_as_mmengine_names(line, work_dir) for line in lines)


def _checkpoint_records(checkpoint, work_dir):
    """What ``checkpoint``'s message hub records about best and kept checkpoints, without the work_dir."""
    info = checkpoint['message_hub']['runtime_info']
    return {k: _as_mmengine_names(v, work_dir) for k, v in info.items() if 'best' in k or 'ckpt' in k}


def test_save_best_names_files_as_mmengine_does(two_bests):
    (mmext_dir, mmext_log), (stock_dir, stock_log) = two_bests['mmext'], two_bests['mmengine']
    names = [sorted(Path(_as_mmengine_names(path, work_dir)).name for path in work_dir.glob('*.pth'))
             for work_dir in (mmext_dir, stock_dir)]
    assert names[0] == names[1]
    # One best per metric, published too: mIoU's last (it rose at every validation), mAcc's lowest.
    assert [name for name in names[0] if name.startswith('best_')] == [
        'best_mAcc_iter_2-<sha>.pth', 'best_mAcc_iter_2.pth',
        'best_mIoU_iter_6-<sha>.pth', 'best_mIoU_iter_6.pth']
    assert _best_log(mmext_log, mmext_dir) == _best_log(stock_log, stock_dir)
    assert 'The previous best checkpoint <work_dir>/best_mIoU_iter_4.pth is removed' in \
        _best_log(mmext_log, mmext_dir)


@pytest.mark.parametrize('name', ['best_mAcc_iter_2.pth', 'best_mIoU_iter_6.pth', 'iter_6.pth'])
def test_save_best_checkpoints_hold_what_mmengine_saves(two_bests, name):
    (mmext_dir, _), (stock_dir, _) = two_bests['mmext'], two_bests['mmengine']
    ours, theirs = _load_checkpoint(str(mmext_dir / name)), _load_checkpoint(str(stock_dir / name))
    assert sorted(ours) == sorted(theirs)
    assert ours['meta']['iter'] == theirs['meta']['iter']
    assert ours['state_dict'].keys() == theirs['state_dict'].keys()
    assert all(torch.equal(ours['state_dict'][k], theirs['state_dict'][k]) for k in ours['state_dict'])
    assert _checkpoint_records(ours, mmext_dir) == _checkpoint_records(theirs, stock_dir)


def test_a_new_best_of_the_old_best_name_replaces_it(tiny_runner):
    runner = tiny_runner('ocr_tiny', {'default_hooks.checkpoint.save_best': 'mIoU'})
    (hook,) = (hook for hook in runner.hooks if isinstance(hook, CheckpointHook))
    hook.before_train(runner)
    for score in (1.0, 2.0):  # validated twice at the same step, better the second time
        hook._save_best_checkpoint(runner, {'mIoU': score})
    assert _bests(runner.work_dir) == ['best_mIoU_iter_0.pth']
    best = _load_checkpoint(str(Path(runner.work_dir) / 'best_mIoU_iter_0.pth'))
    assert best['message_hub']['runtime_info']['best_score'] == 2.0


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
    assert getattr(CheckpointHook._save_best_checkpoint, '_mmext_atomic')
