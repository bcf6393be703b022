"""tools/train.py and tools/test.py as distributed runs on CPU: 2 processes on gloo, on the tiny configs,
launched by torchrun itself or through tools/dist_train.sh (train.py), or as Slurm's srun launches them
(test.py).

- Where the maths makes it exact (tests/configs/ocr_tiny_gn_dist.py: GroupNorm, no dropout, no random
  flip), the mean of the two ranks' losses with batch 2 each equals, at every iteration, the loss of a
  1-process run with batch 4: the ranks see the two halves of the 1-process batch (mmengine's
  InfiniteSampler deals one shuffled order round-robin), the losses are means over equally sized
  images, and DDP averages the gradients. The final weights agree too.
- With BN (the PointRend and DLDE tiny configs) each process normalises with the statistics of its own
  images, so the losses are not those of the larger batch; DDP still keeps the parameters identical on
  both ranks, while the BN running statistics differ (the checkpoint holds rank 0's). DLDE's class means
  are all-reduced: identical on both ranks.

The ``*_dist.py`` configs add RankProbeHook (tests/scripts/mmext_dist_probe.py), which writes every rank's
losses and final state: mmengine logs and saves rank 0's only.
"""
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

import mmext  # noqa: F401  (checkpoints load under torch's weights_only unpickler)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'tests/configs'
PROBE = ROOT / 'tests/scripts'  # mmext_dist_probe.py, which the *_dist.py configs import
TRAIN, TEST = ROOT / 'tools/train.py', ROOT / 'tools/test.py'


def _env(**extra):
    """The runs' environment: the probe module importable, one thread per process (as torchrun sets
    it: more oversubscribe the cores), plus ``extra`` variables."""
    path = os.pathsep.join(filter(None, [str(PROBE), os.environ.get('PYTHONPATH')]))
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS='1', **extra)


def _options(config, data_root, *extra):
    """--cfg-options that point every data path of ``config`` at ``data_root``: the datasets and, for
    COCO-style detection configs, the evaluators' annotation files."""
    data = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    evaluators = [f'{split}_evaluator.ann_file={data_root}/annotations/instances_val.json'
                  for split in ('val', 'test')
                  if 'ann_file' in Config.fromfile(config, import_custom_modules=False)[f'{split}_evaluator']]
    return ['--cfg-options', *data, *evaluators, *extra]


def _checked(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + (proc.stderr or '')[-3000:]
    return proc.stdout + (proc.stderr or '')


def _train(config, work_dir, data_root, nproc=None, *extra):
    """tools/train.py in one process, or under ``torchrun --nproc_per_node=nproc``; returns its log.

    In fp32 (``--fp32``; the segmentation recipes train in bf16 on CPUs with bf16 units): the tests
    compare 2 processes with 1 process of double batch up to fp32 rounding, and bf16 convolutions
    round a batch of 2 and a batch of 4 differently (pixel accuracy 31.64 vs 31.59 at iteration 2)."""
    tool = [str(TRAIN), str(config), '--fp32', '--work-dir', str(work_dir)]
    if nproc:
        command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                   f'--nproc_per_node={nproc}', *tool, '--launcher', 'pytorch']
    else:
        command = [sys.executable, *tool]
    return _checked(subprocess.run([*command, *_options(config, data_root, *extra)], cwd=ROOT, env=_env(),
                                   capture_output=True, text=True, timeout=300))


def _dist_train_sh(config, work_dir, data_root, nproc):
    """tools/dist_train.sh with ``nproc`` processes on a free port; returns its log."""
    command = ['bash', str(ROOT / 'tools/dist_train.sh'), str(config), str(nproc),
               '--work-dir', str(work_dir), *_options(config, data_root)]
    return _checked(subprocess.run(command, cwd=ROOT, env=_env(PORT=str(_free_port()), PYTHON=sys.executable),
                                   capture_output=True, text=True, timeout=300))


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _srun(nproc, command):
    """``command`` as ``srun --ntasks=nproc`` starts it on one node (the SLURM_* variables that
    mmengine's slurm launcher reads; MASTER_ADDR given, so scontrol is not needed); returns the logs."""
    slurm = dict(SLURM_NTASKS=str(nproc), SLURM_NODELIST='localhost', MASTER_ADDR='127.0.0.1',
                 MASTER_PORT=str(_free_port()))
    procs = [subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=_env(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), **slurm))
             for rank in range(nproc)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    return outputs


def _rank_records(work_dir, rank):
    return [json.loads(line) for line in (work_dir / f'rank{rank}_losses.jsonl').read_text().splitlines()]


def _rank_state(work_dir, rank):
    return torch.load(work_dir / f'rank{rank}_state.pth')


def _scalars(work_dir):
    (path,) = Path(work_dir).glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in path.read_text().splitlines()]


def _floating(state, running_stats):
    """The floating-point tensors of a state dict: parameters (and DLDE means), or BN running stats."""
    return {k: v for k, v in state.items()
            if v.is_floating_point() and ('.running_' in k) == running_stats}


@pytest.fixture(scope='module')
def ocr(tmp_path_factory):
    """ocr_tiny_gn_dist.py with 2 processes of batch 2, and with 1 process of batch 4."""
    tmp = tmp_path_factory.mktemp('ocr_dist')
    config, data_root = CONFIGS / 'ocr_tiny_gn_dist.py', tmp / 'data'
    _train(config, tmp / 'two', data_root, 2)
    _train(config, tmp / 'one', data_root, None, 'train_dataloader.batch_size=4')
    return dict(config=config, data_root=data_root, two=tmp / 'two', one=tmp / 'one')


def test_two_processes_compute_the_losses_of_one_process_with_double_batch(ocr):
    rank0, rank1 = (_rank_records(ocr['two'], rank) for rank in (0, 1))
    single = _rank_records(ocr['one'], 0)
    for records in (rank0, rank1, single):
        assert [r['iter'] for r in records] == [1, 2, 3, 4]
    assert rank0[0]['loss'] != rank1[0]['loss']  # the ranks saw different images
    for r0, r1, r in zip(rank0, rank1, single):
        assert set(r0) == set(r) and 'decode_1.loss_ce' in r
        for key in set(r) - {'iter'}:  # losses and pixel accuracies: means over equally sized halves
            assert (r0[key] + r1[key]) / 2 == pytest.approx(r[key], rel=1e-5, abs=1e-5), (r['iter'], key)


def test_two_processes_end_with_the_weights_of_one_process(ocr):
    rank0, rank1 = (_floating(_rank_state(ocr['two'], rank), False) for rank in (0, 1))
    single = _floating(_rank_state(ocr['one'], 0), False)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    two, one = (torch.cat([state[k].flatten() for k in sorted(state)]) for state in (rank0, single))
    # Equal up to rounding, amplified by Adam for the few weights whose gradient is almost zero (a GN
    # bias in the OCR key projection moved by up to 2e-4): 0.8e-6 to 4.7e-6 relative in the runs measured.
    assert ((two - one).norm() / one.norm()).item() < 1e-4


def test_distributed_test_tool_evaluates_like_one_process(ocr):
    # The 1-process run's checkpoint, tested by 2 Slurm-launched processes of tools/test.py.
    command = [sys.executable, str(TEST), str(ocr['config']), str(ocr['one'] / 'iter_4.pth'),
               '--work-dir', str(ocr['one'] / 'test'), '--launcher', 'slurm',
               *_options(ocr['config'], ocr['data_root'])]
    rank0_log, _ = _srun(2, command)  # ranks other than 0 log warnings and errors only
    assert 'Iter(test) [2/2]' in rank0_log  # rank 0 predicted 2 of the 4 images, yet the metric is
    (val,) = [r for r in _scalars(ocr['one']) if 'mIoU' in r]  # that of all 4 (1-process validation)
    for key in ('aAcc', 'mIoU', 'mBIoU'):
        tested = float(re.search(rf'Iter\(test\).* {key}: ([0-9.]+)', rank0_log).group(1))
        assert tested == pytest.approx(val[key], abs=0.01), key


@pytest.fixture(scope='module')
def bn_run(tmp_path_factory):
    """``bn_run(name)``: the work_dir of ``<name>_tiny_dist.py`` (BN) trained by 2 processes through
    tools/dist_train.sh, trained on first use."""
    work_dirs = {}

    def run(name):
        if name not in work_dirs:
            tmp = tmp_path_factory.mktemp(f'{name}_dist')
            _dist_train_sh(CONFIGS / f'{name}_tiny_dist.py', tmp / 'work', tmp / 'data', 2)
            work_dirs[name] = tmp / 'work'
        return work_dirs[name]

    return run


@pytest.mark.parametrize('name', ['pointrend', 'dlde'])
def test_bn_configs_train_in_sync_on_two_processes(bn_run, name):
    work_dir = bn_run(name)
    for rank in (0, 1):
        records = _rank_records(work_dir, rank)
        assert [r['iter'] for r in records] == [1, 2, 3, 4]
        assert all(math.isfinite(r['loss']) and r['loss'] > 0 for r in records)
    states = [_rank_state(work_dir, rank) for rank in (0, 1)]
    params = [_floating(state, False) for state in states]
    for key in params[0]:
        assert torch.equal(params[0][key], params[1][key]), key
    # BN statistics are per process: DDP does not broadcast buffers in mmengine, so they differ.
    stats = [_floating(state, True) for state in states]
    assert stats[0] and any(not torch.equal(stats[0][k], stats[1][k]) for k in stats[0])
    saved = _load_checkpoint(str(work_dir / 'iter_4.pth'))
    assert saved['meta']['iter'] == 4
    for key, value in saved['state_dict'].items():  # rank 0 saves its own state
        assert torch.equal(value, states[0][key]), key


def test_dlde_means_are_identical_on_both_ranks(bn_run):
    means = [_rank_state(bn_run('dlde'), rank)['bbox_head.means'] for rank in (0, 1)]
    assert torch.equal(means[0], means[1])
    # Every class met a positive anchor, so every mean is a unit direction (they start at zero).
    torch.testing.assert_close(means[0].norm(dim=1), torch.ones(len(means[0])))


def test_net2vec_probe_trains_on_two_processes(tmp_path_factory):
    # The embedded Net2Vec config probes a frozen backbone: DDP then wraps a model whose only trainable
    # parameters are the probe's, and every rank must keep the loaded backbone (BN statistics too).
    tmp = tmp_path_factory.mktemp('net2vec_dist')
    checkpoint = tmp / 'ocr/iter_4.pth'
    _train(CONFIGS / 'ocr_tiny.py', tmp / 'ocr', tmp / 'data')
    log = _train(CONFIGS / 'net2vec_tiny.py', tmp / 'probe', tmp / 'data', 2,
                 f'model.backbone.init_cfg.checkpoint={checkpoint}')
    ocr = _load_checkpoint(str(checkpoint))['state_dict']
    probe = _load_checkpoint(str(tmp / 'probe/iter_4.pth'))['state_dict']
    backbone = [k for k in probe if k.startswith('backbone.')]
    assert backbone and all(torch.equal(probe[k], ocr[k]) for k in backbone)
    assert torch.isfinite(probe['decode_head.conv_seg.weight']).all()
    assert re.search(r'IoU\.ring: [0-9.]+', log)
