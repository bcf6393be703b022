"""End to end on a tiny DLDE RetinaNet: tools/train.py with the manual-means hook, the means in
checkpoints and on resume, tools/test.py, and the class-mean visualization."""
import json
import re
from pathlib import Path

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import mmext  # noqa: F401
from mmext.testing.tools import run_tool

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/configs/dlde_tiny.py'


def _options(data_root):
    ann = f'{data_root}/annotations/instances_val.json'
    return ([f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
            + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dlde')
    data_root = tmp / 'data'
    log = run_tool('tools/train.py', TINY, '--work-dir', tmp / 'work', '--cfg-options', *_options(data_root))
    return tmp, data_root, log


def _means(path):
    return _load_checkpoint(str(path))['state_dict']['bbox_head.means']


def test_training_updates_means_through_the_hook(trained):
    tmp, _, log = trained
    assert 'initial class means from 4 batches' in log
    assert 'no DLDEMeansHook is configured' not in log
    (scalars,) = (tmp / 'work').glob('*/vis_data/scalars.json')
    final = [json.loads(line) for line in scalars.read_text().splitlines()][-1]
    assert 0 <= final['coco/bbox_mAP'] <= 1
    for name in ('iter_2.pth', 'iter_4.pth'):
        means = _means(tmp / 'work' / name)
        norms = means.norm(dim=1)
        assert torch.isfinite(means).all() and ((norms - 1).abs() < 1e-5).sum() >= 1  # seen classes
        assert ((norms - 1).abs() < 1e-5).logical_or(norms == 0).all()  # unseen ones stay zero
    state = _load_checkpoint(str(tmp / 'work/iter_4.pth'))['state_dict']
    assert state['bbox_head.embedding_sums'].abs().sum() == 0  # cleared by the update at iter 4


def test_resume_restores_the_means(trained, tmp_path):
    tmp, data_root, _ = trained
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict({o.split('=')[0]: o.split('=', 1)[1] for o in _options(data_root)})
    cfg.work_dir, cfg.resume, cfg.load_from = str(tmp_path), True, str(tmp / 'work/iter_2.pth')
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    assert runner.iter == 2
    torch.testing.assert_close(runner.model.bbox_head.means, _means(tmp / 'work/iter_2.pth'))


def test_test_tool_reproduces_the_final_map(trained):
    tmp, data_root, log = trained
    tested = run_tool('tools/test.py', TINY, tmp / 'work/iter_4.pth', '--work-dir', tmp / 'test',
                      '--cfg-options', *_options(data_root))
    pattern = r'coco/bbox_mAP: ([0-9.]+)'
    assert float(re.findall(pattern, tested)[-1]) == pytest.approx(float(re.findall(pattern, log)[-1]))


def test_visualization_writes_the_matrix_and_histograms(trained):
    tmp, data_root, _ = trained
    out = tmp / 'dlde.png'
    log = run_tool('tools/analysis/visualize_dlde.py', TINY, tmp / 'work/iter_4.pth', '--out', out,
                   '--cfg-options', *_options(data_root))
    assert re.search(r'wrote .*dlde.png \((\d+) positive anchors\)', log)
    image = cv2.imread(str(out))
    height, width, _ = image.shape  # 6 square panels side by side: the matrix and 5 class histograms
    assert width / height == pytest.approx(6, rel=0.02)


def test_num_classes_mismatch_is_refused(tmp_path):
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict({o.split('=')[0]: o.split('=', 1)[1] for o in _options(tmp_path / 'data')})
    cfg.merge_from_dict({'model.bbox_head.num_classes': 7})
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(AssertionError, match='num_classes'):
        Runner.from_cfg(cfg).train()


def test_epoch_updates_with_an_iteration_loop_are_refused(tmp_path):
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict({o.split('=')[0]: o.split('=', 1)[1] for o in _options(tmp_path / 'data')})
    cfg.custom_hooks = [dict(type='DLDEMeansHook')]  # interval=None: after every epoch
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(ValueError, match='set interval'):
        Runner.from_cfg(cfg).train()
