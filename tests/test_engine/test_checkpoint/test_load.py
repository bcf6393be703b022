"""Checkpoints load through mmengine under torch's weights_only unpickler with mmext's allow-list;
code-running checkpoints (attacks.py) are refused in every format, by every loader."""
import copy
import importlib.util
import os
import pathlib
import pickle
import re
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
import mmengine.runner.checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, load_checkpoint
from mmengine.testing import RunnerTestCase
from mmengine.testing.runner_test_case import ToyModel

import mmext  # noqa: F401  (installs the scoped allow-list, as custom_imports does)
from mmext.engine import patch_mmengine
from mmext.engine.checkpoint import CHECKPOINT_SAFE_GLOBALS, UnsafeCheckpointError, load_url


def _import_beside(name):
    path = pathlib.Path(__file__).parent / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'mmext_tests_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


attacks = _import_beside('attacks')


@pytest.fixture
def toy():
    """mmengine's RunnerTestCase set-up: toy model, dataset, metric and configs, cleaned up after."""
    case = RunnerTestCase()
    case.setUp()
    yield case
    case.tearDown()


def _config(toy, by_epoch, length):
    """SGD with momentum and a param scheduler, so that the checkpoint holds their state.

    ``length`` is in epochs (4 iterations each: 12 samples, batch 3) or in iterations.
    """
    cfg = copy.deepcopy(toy.epoch_based_cfg if by_epoch else toy.iter_based_cfg)
    cfg.optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    if by_epoch:
        cfg.train_cfg = dict(by_epoch=True, max_epochs=length, val_interval=1)
        # OneCycle's state pickles ``getattr(OneCycleParamScheduler, '_annealing_cos')``.
        cfg.param_scheduler = dict(type='OneCycleLR', eta_max=0.1, total_steps=8, by_epoch=False)
    else:
        cfg.train_cfg = dict(by_epoch=False, max_iters=length)
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3, by_epoch=False)
        cfg.param_scheduler = dict(type='MultiStepLR', milestones=[2], by_epoch=False)
    return cfg


def _momentum_buffers(runner):
    state = runner.optim_wrapper.optimizer.state
    return [state[p]['momentum_buffer'].clone() for p in runner.model.parameters()]


@pytest.fixture
def evil(tmp_path):
    """A checkpoint whose pickle would create ``marker`` through ``builtins.exec``."""
    marker = tmp_path / 'marker'
    path = tmp_path / 'evil.pth'
    attacks.code_running(path, marker, 'exec', 'zip')
    return path, marker


@pytest.mark.parametrize('by_epoch', [False, True], ids=['iter', 'epoch'])
def test_resume_restores_training_state(toy, by_epoch):
    first = toy.build_runner(_config(toy, by_epoch, length=1 if by_epoch else 3))
    first.train()
    ckpt = os.path.join(first.work_dir, 'epoch_1.pth' if by_epoch else 'iter_3.pth')
    model = ToyModel()
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    for name, weight in first.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], weight, rtol=0, atol=0)

    second = toy.build_runner(_config(toy, by_epoch, length=2 if by_epoch else 6))
    second.resume(ckpt)
    assert (second.epoch, second.iter) == ((1, 4) if by_epoch else (0, 3))
    for resumed, saved in zip(_momentum_buffers(second), _momentum_buffers(first)):
        torch.testing.assert_close(resumed, saved, rtol=0, atol=0)
        assert saved.abs().sum() > 0
    resumed_scheduler = second.param_schedulers[0].state_dict()
    assert resumed_scheduler == first.param_schedulers[0].state_dict()
    assert resumed_scheduler['last_step'] > 0
    resumed_loss = second.message_hub.get_scalar('train/loss')
    assert isinstance(resumed_loss, HistoryBuffer)
    for resumed, saved in zip(resumed_loss.data, first.message_hub.get_scalar('train/loss').data):
        np.testing.assert_array_equal(resumed, saved)
    assert len(resumed_loss.data[0]) == (4 if by_epoch else 3)
    assert resumed_loss.statistics('mean') == pytest.approx(resumed_loss.data[0].mean())

    second.train()
    assert (second.epoch, second.iter) == ((2, 8) if by_epoch else (0, 6))
    assert os.path.isfile(os.path.join(second.work_dir, 'epoch_2.pth' if by_epoch else 'iter_6.pth'))


def test_checkpoint_written_by_numpy1_loads(toy, tmp_path):
    """OpenMMLab's model zoo predates numpy 2, whose pickles name ``numpy.core`` not ``numpy._core``."""
    runner = toy.build_runner(_config(toy, by_epoch=False, length=3))
    runner.train()
    numpy1 = tmp_path / 'numpy1.pth'
    written = os.path.join(runner.work_dir, 'iter_3.pth')
    with zipfile.ZipFile(written) as src, zipfile.ZipFile(numpy1, 'w') as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('/data.pkl'):
                assert b'numpy._core.multiarray\n' in data
                data = data.replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
            dst.writestr(info.filename, data)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(numpy1)
    assert 'numpy.core.multiarray._reconstruct' in unsafe

    checkpoint = _load_checkpoint(str(numpy1))
    loss = checkpoint['message_hub']['log_scalars']['train/loss']
    np.testing.assert_array_equal(loss.data[0], runner.message_hub.get_scalar('train/loss').data[0])
    assert checkpoint['message_hub']['runtime_info']['eta'].dtype == np.float64


@pytest.mark.parametrize('load', [
    lambda path: load_checkpoint(ToyModel(), path),
    lambda path: _load_checkpoint(path),
    lambda path: CheckpointLoader.load_checkpoint(path),
], ids=['load_checkpoint', '_load_checkpoint', 'CheckpointLoader'])
def test_code_executing_pickle_is_refused(evil, load):
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load(str(path))
    assert not marker.exists()
    message = str(excinfo.value)
    assert str(path) in message
    assert 'it needs builtins.exec' in message and 'almost certainly malicious' in message
    assert "mmext keeps torch.load's weights_only unpickler on purpose" in message
    assert excinfo.value.refused == ['builtins.exec']
    assert isinstance(excinfo.value.__cause__, pickle.UnpicklingError)
    assert 'Weights only load failed' in str(excinfo.value.__cause__)


def test_trusted_file_loads_after_the_advised_allow_listing(tmp_path):
    path = tmp_path / 'extra.pth'
    torch.save({'meta': {'data_root': pathlib.PurePosixPath('/data/cityscapes')}}, path)
    advice = r'add_safe_globals\(\[PurePosixPath\]\)` with PurePosixPath imported from pathlib'
    with pytest.raises(UnsafeCheckpointError, match=advice) as excinfo:
        _load_checkpoint(str(path))
    assert excinfo.value.refused == ['pathlib.PurePosixPath']
    with torch.serialization.safe_globals([pathlib.PurePosixPath]):
        checkpoint = _load_checkpoint(str(path))
    assert checkpoint['meta']['data_root'] == pathlib.PurePosixPath('/data/cityscapes')


def test_payload_is_live(evil):
    """The refusals above matter: a full unpickler runs the payload."""
    path, marker = evil
    with zipfile.ZipFile(path) as archive:
        pickle.loads(archive.read('evil/data.pkl'))
    assert marker.read_text() == 'pwned'


def test_blocked_module_is_refused_as_malicious(tmp_path):
    marker = tmp_path / 'marker'
    path = tmp_path / 'system.pth'
    torch.save({'meta': attacks.Reduce(os.system, (f'touch {marker}', ))}, path)
    with pytest.raises(UnsafeCheckpointError, match=r'posix\.system.*almost certainly malicious'):
        _load_checkpoint(str(path))
    assert not marker.exists()


@pytest.mark.parametrize('owner,name', [(np.ndarray, 'tofile'), (HistoryBuffer, '__init__')],
                         ids=['other-class', 'other-method'])
def test_allowed_classes_give_nothing_beyond_their_state(tmp_path, owner, name):
    """A HistoryBuffer whose pickled statistics table smuggles in another callable is refused."""
    path = tmp_path / 'buffer.pth'
    smuggled = {'_log_history': np.array([1.0]), '_count_history': np.array([1]), 'max_length': 10,
                'statistics_methods': {'mean': attacks.Reduce(getattr, (owner, name))}}
    buffer = attacks.NewObj(HistoryBuffer, (), smuggled)
    torch.save({'message_hub': {'log_scalars': {'loss': buffer}}}, path)
    table = dict(HistoryBuffer._statistics_methods)
    with pytest.raises(UnsafeCheckpointError, match=r'getattr\(<class'):
        _load_checkpoint(str(path))
    assert HistoryBuffer._statistics_methods == table


def test_exec_inside_allowed_class_state_is_refused(tmp_path):
    marker = tmp_path / 'marker'
    path = tmp_path / 'buffer.pth'
    smuggled = {'statistics_methods': {'mean': attacks.PAYLOADS['exec'](marker)}}
    torch.save({'message_hub': {'log_scalars': {'loss': attacks.NewObj(HistoryBuffer, (), smuggled)}}}, path)
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        _load_checkpoint(str(path))
    assert not marker.exists()


def test_weights_only_stays_on_outside_mmengine(toy, evil):
    path, marker = evil
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    assert torch.load is torch.serialization.load
    with pytest.raises(pickle.UnpicklingError) as excinfo:
        torch.load(path)
    assert not isinstance(excinfo.value, UnsafeCheckpointError)
    assert not marker.exists()

    runner = toy.build_runner(_config(toy, by_epoch=False, length=3))
    runner.train()
    ckpt = os.path.join(runner.work_dir, 'iter_3.pth')
    assert _load_checkpoint(ckpt)['meta']['iter'] == 3
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(ckpt)
    allowed = torch.serialization.get_safe_globals()
    assert not [g for g in CHECKPOINT_SAFE_GLOBALS if g in allowed]


def test_user_allow_list_survives_a_load(toy):
    runner = toy.build_runner(_config(toy, by_epoch=False, length=3))
    runner.train()
    with torch.serialization.safe_globals([HistoryBuffer]):
        _load_checkpoint(os.path.join(runner.work_dir, 'iter_3.pth'))
        assert HistoryBuffer in torch.serialization.get_safe_globals()


def test_install_is_idempotent():
    schemes = dict(CheckpointLoader._schemes)
    assert schemes[''].__name__ == 'load_from_local'  # CheckpointLoader logs the name
    assert schemes[''].__module__ == 'mmext.engine.checkpoint.load'
    assert schemes['http://'].__wrapped__ is mmengine_checkpoint.load_from_http
    assert mmengine_checkpoint.load_url is load_url  # what load_from_http (and the hub schemes) call
    patch_mmengine()
    patch_mmengine()
    assert CheckpointLoader._schemes == schemes

    def load_from_test(filename, map_location=None):
        return torch.load(filename, map_location=map_location)

    CheckpointLoader.register_scheme('mmext-test://', load_from_test)
    try:
        patch_mmengine()
        added = CheckpointLoader._schemes['mmext-test://']
        assert added.__wrapped__ is load_from_test
        assert CheckpointLoader._schemes == {**schemes, 'mmext-test://': added}
    finally:
        del CheckpointLoader._schemes['mmext-test://']


def test_checkpoint_with_ema_best_clipping_and_schedulers_resumes(toy, tmp_path):
    """A toy run with the common lr and momentum schedulers, EMA, save_best and gradient clipping: its
    regular and best checkpoints load, and it resumes from both; numpy int32 count histories (numpy's
    default integer on Windows) load too."""
    cfg = copy.deepcopy(toy.iter_based_cfg)
    cfg.optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9), clip_grad=dict(max_norm=1.0))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
        dict(type='CosineAnnealingLR', T_max=4, by_epoch=False, begin=2, end=6),
        dict(type='PolyLR', power=0.9, eta_min=1e-4, by_epoch=False, begin=0, end=6),
        dict(type='StepLR', step_size=2, gamma=0.5, by_epoch=False),
        dict(type='CosineAnnealingMomentum', T_max=6, by_epoch=False),
    ]
    cfg.custom_hooks = [dict(type='EMAHook', momentum=0.5)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3, by_epoch=False, save_best='acc',
                                        rule='greater')
    cfg.train_cfg = dict(by_epoch=False, max_iters=3, val_interval=3)
    first = toy.build_runner(cfg)
    first.train()
    (best, ) = [p for p in os.listdir(first.work_dir) if p.startswith('best_acc')]
    regular = os.path.join(first.work_dir, 'iter_3.pth')
    checkpoint = _load_checkpoint(regular)
    assert len(checkpoint['param_schedulers']) == 5 and 'ema_state_dict' in checkpoint
    assert checkpoint['message_hub']['runtime_info']['best_score'] == 1

    int32 = tmp_path / 'int32.pth'
    for buffer in checkpoint['message_hub']['log_scalars'].values():
        buffer._count_history = buffer._count_history.astype(np.int32)
    torch.save(checkpoint, int32)
    loaded = _load_checkpoint(str(int32))['message_hub']['log_scalars']['train/loss']
    assert loaded._count_history.dtype == np.int32

    for path in (regular, os.path.join(first.work_dir, best), str(int32)):
        resumed = copy.deepcopy(cfg)
        resumed.train_cfg = dict(by_epoch=False, max_iters=6, val_interval=3)
        resumed.update(resume=True, load_from=path, experiment_name=f'resume_{os.path.basename(path)}')
        second = toy.build_runner(resumed)
        iterations = []
        run_iter = second.train_loop.run_iter
        second.train_loop.run_iter = lambda batch: iterations.append(1) or run_iter(batch)
        second.train()
        assert len(iterations) == 3 and second.iter == 6  # iterations 4 to 6: it resumed at 3


# -- code-running checkpoints in every format and payload, through the runner's loaders ---------------

FORMATS = ('zip', 'legacy', 'raw-pickle')
REFUSED = {  # the global each attacks.PAYLOADS entry needs, as the refusal names it
    'exec': r'builtins\.exec', 'eval': r'builtins\.eval', 'os.system': r'posix\.system',
    'subprocess.Popen': r'Popen'}


@pytest.fixture
def toy_runner(toy):
    """Builds mmengine's toy epoch-based runner when called."""
    return lambda: toy.build_runner(copy.deepcopy(toy.epoch_based_cfg))


@pytest.mark.parametrize('fmt', FORMATS)
@pytest.mark.parametrize('payload', list(attacks.PAYLOADS))
def test_code_running_checkpoint_is_refused(tmp_path, payload, fmt):
    marker = tmp_path / 'marker'
    path = attacks.code_running(tmp_path / 'evil.pth', marker, payload, fmt)
    with pytest.raises(UnsafeCheckpointError, match='Refused to load checkpoint') as excinfo:
        load_checkpoint(ToyModel(), path, map_location='cpu')
    assert not marker.exists()  # the code did not run
    if fmt != 'raw-pickle':  # pickle protocol 4 framing stops torch before it names a global
        message = str(excinfo.value)
        assert re.search(REFUSED[payload], message) and 'almost certainly malicious' in message, message


LOADERS = {  # load_checkpoint, _load_checkpoint and CheckpointLoader: test_code_executing_pickle_is_refused
    'runner.load_checkpoint': lambda runner, path: runner().load_checkpoint(path),
    'runner.resume': lambda runner, path: runner().resume(path),
}


@pytest.mark.parametrize('loader', list(LOADERS))
def test_code_running_checkpoint_is_refused_by_every_loader(tmp_path, toy_runner, loader):
    marker = tmp_path / 'marker'
    path = attacks.code_running(tmp_path / 'evil.pth', marker, 'exec', 'zip')
    with pytest.raises(UnsafeCheckpointError, match=r'it needs builtins\.exec.*almost certainly malicious'):
        LOADERS[loader](toy_runner, path)
    assert not marker.exists()


@pytest.mark.parametrize('payload', list(attacks.PAYLOADS))
def test_payload_would_run_without_the_allow_list(tmp_path, payload):
    """The refusals above matter: the plain unpickler runs every payload."""
    marker = tmp_path / 'marker'
    path = attacks.code_running(tmp_path / 'evil.pth', marker, payload, 'raw-pickle')
    with open(path, 'rb') as f:
        loaded = pickle.load(f)
    if isinstance(loaded['meta']['note'], subprocess.Popen):
        loaded['meta']['note'].wait()
    assert marker.exists()
