"""End to end: tools/train.py, tools/test.py and --resume on a tiny OCRNet config and dataset."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import mmext  # noqa: F401
from mmext.engine.optim import cpu_bf16_flags

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/configs/ocr_tiny.py'


def _data_options(data_root):
    """The tiny dataset's folder, and on a GPU cuDNN's heuristics in place of its benchmark (mmseg's
    default runtime): benchmarking picks each process's convolution algorithms by timing them, so the
    same weights could give another mIoU in tools/test.py than in training's validation (2.13 against
    2.14 on an H200)."""
    return [*(f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')),
            'env_cfg.cudnn_benchmark=False']


def _run(tool, *args):
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / tool), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _scalars(work_dir):
    (path,) = Path(work_dir).glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('e2e')
    data_root, work_dir = tmp / 'data', tmp / 'work'
    log = _run('train.py', TINY, '--work-dir', work_dir, '--cfg-options', *_data_options(data_root))
    return tmp, data_root, work_dir, log


def test_train_writes_checkpoints_and_validates(trained):
    _, data_root, work_dir, _ = trained
    assert (data_root / 'meta.json').exists()  # the dataset was generated on first use
    assert {p.name for p in work_dir.glob('iter_*.pth')} == {'iter_2.pth', 'iter_4.pth'}
    records = _scalars(work_dir)
    assert [r['iter'] for r in records if 'loss' in r] == [1, 2, 3, 4]
    (val,) = [r for r in records if 'mIoU' in r]
    assert 0.0 <= val['mIoU'] <= 100.0
    ckpt = _load_checkpoint(str(work_dir / 'iter_4.pth'))  # weights_only, mmext's allow-list
    assert ckpt['meta']['iter'] == 4


def test_test_tool_reproduces_final_validation(trained):
    tmp, data_root, work_dir, _ = trained
    out = tmp / 'pred'
    log = _run('test.py', TINY, work_dir / 'iter_4.pth', '--work-dir', tmp / 'test', '--out', out,
               '--cfg-options', *_data_options(data_root))
    (val,) = [r for r in _scalars(work_dir) if 'mIoU' in r]
    tested = float(re.search(r'mIoU: ([0-9.]+)', log).group(1))
    assert tested == pytest.approx(val['mIoU'], abs=0.01)  # same weights, same val split
    assert len(list(out.glob('*.png'))) == 4  # one predicted label map per val image


def test_stock_mmseg_test_tool_runs_the_config(trained):
    # mmseg's own tools/test.py knows nothing of mmext: custom_imports registers the head and the
    # dataset, and makes the checkpoint load under torch's weights_only unpickler.
    import mmseg
    tmp, data_root, work_dir, _ = trained
    stock = Path(mmseg.__file__).parent / '.mim/tools/test.py'
    proc = subprocess.run(
        [sys.executable, str(stock), str(TINY), str(work_dir / 'iter_4.pth'), '--work-dir',
         str(tmp / 'stock'), '--cfg-options', *_data_options(data_root)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (val,) = [r for r in _scalars(work_dir) if 'mIoU' in r]
    tested = float(re.search(r'mIoU: ([0-9.]+)', proc.stdout + proc.stderr).group(1))
    assert tested == pytest.approx(val['mIoU'], abs=0.01)


def test_resume_continues_from_checkpoint(trained):
    tmp, data_root, work_dir, _ = trained
    resumed = tmp / 'resumed'
    log = _run('train.py', TINY, '--work-dir', resumed, '--resume', work_dir / 'iter_2.pth',
               '--cfg-options', *_data_options(data_root))
    assert 'resumed' in log.lower()
    assert [r['iter'] for r in _scalars(resumed) if 'loss' in r] == [3, 4]
    assert _load_checkpoint(str(resumed / 'iter_4.pth'))['meta']['iter'] == 4


@pytest.mark.skipif(not torch.cuda.is_available() and not cpu_bf16_flags(),
                    reason='no GPU, and this CPU has no bf16 units (--amp is then refused: '
                    'tests/test_engine/test_optim)')
def test_amp_trains_resumes_and_tests(trained):
    """--amp: bf16 autocast on a CPU, fp16 with dynamic loss scaling (mmengine's AmpOptimWrapper) on a
    GPU, through MixedPrecisionOptimWrapper; checkpoints that resume under --amp (the loss scale too)
    and load in tools/test.py."""
    tmp, data_root, _, _ = trained
    amp = tmp / 'amp'
    options = ['--cfg-options', *_data_options(data_root), 'train_cfg.max_iters=2',
               'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1']
    log = _run('train.py', TINY, '--amp', '--work-dir', amp, *options)
    cuda = torch.cuda.is_available()
    assert ('fp16 autocast on cuda (AmpOptimWrapper, dynamic loss scaling)' if cuda
            else 'bf16 autocast on CPU') in log
    assert [r['iter'] for r in _scalars(amp) if 'loss' in r] == [1, 2]
    saved = _load_checkpoint(str(amp / 'iter_2.pth'))['optimizer']
    assert ('loss_scaler' in saved) == cuda
    options[-3] = 'train_cfg.max_iters=3'
    log = _run('train.py', TINY, '--amp', '--work-dir', amp / 'resumed', '--resume', amp / 'iter_2.pth',
               *options)
    assert [r['iter'] for r in _scalars(amp / 'resumed') if 'loss' in r] == [3]
    resumed = _load_checkpoint(str(amp / 'resumed/iter_3.pth'))
    assert 'MixedPrecisionOptimWrapper' in resumed['meta']['cfg']
    if cuda:  # the loss scale resumed: iteration 3 grew the saved counter, or halved the saved scale
        scale, tracker = (saved['loss_scaler'][key] for key in ('scale', '_growth_tracker'))
        resumed_scaler = resumed['optimizer']['loss_scaler']
        assert (resumed_scaler['scale'], resumed_scaler['_growth_tracker']) in ((scale, tracker + 1),
                                                                               (scale / 2, 0))
    tested = _run('test.py', TINY, amp / 'resumed/iter_3.pth', '--work-dir', tmp / 'amp_test',
                  '--cfg-options', *_data_options(data_root))
    assert 0 <= float(re.search(r'mIoU: ([0-9.]+)', tested).group(1)) <= 100


def _tiny_runner(tmp_path, **overrides):
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path / 'work')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(tmp_path / 'data')
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def test_num_classes_mismatch_names_the_key(tmp_path):
    runner = _tiny_runner(tmp_path, **{'model.decode_head.1.num_classes': 9})
    with pytest.raises(ValueError, match=r'model\.decode_head\.1\.num_classes=9.*6 classes'):
        runner.train()


def test_missing_auxiliary_head_is_a_clear_error(tmp_path):
    cfg = Config.fromfile(TINY)
    cfg.model.type = 'EncoderDecoder'
    cfg.model.decode_head = cfg.model.decode_head[1]
    cfg.model.pop('num_stages')
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(cfg.model)
    with pytest.raises(TypeError, match='CascadeEncoderDecoder'):
        model(torch.rand(1, 3, 64, 64), mode='tensor')
