"""End to end: tools/train.py and tools/test.py on a tiny PointRend config (refined and coarse
output), and the subdivision-point visualization."""
from pathlib import Path

import cv2
import pytest
from mmext.testing.tools import last_metrics, run_tool

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/configs/pointrend_tiny.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('pointrend')
    options = [f'{split}_dataloader.dataset.data_root={tmp / "data"}' for split in ('train', 'val', 'test')]
    log = run_tool('tools/train.py', TINY, '--work-dir', tmp / 'work', '--cfg-options', *options)
    return tmp, options, last_metrics(log)


def test_test_tool_reproduces_validation_and_runs_coarse(trained):
    tmp, options, val = trained
    checkpoint = tmp / 'work/iter_4.pth'
    refined = last_metrics(run_tool('tools/test.py', TINY, checkpoint, '--work-dir', tmp / 'test',
                                    '--cfg-options', *options))
    assert refined == pytest.approx(val, abs=0.01)
    coarse = last_metrics(run_tool('tools/test.py', TINY, checkpoint, '--work-dir', tmp / 'coarse',
                                   '--cfg-options', *options, 'model.test_cfg.subdivision_steps=0'))
    assert 0 <= coarse['mBIoU'] <= 100 and coarse != refined  # the point head changed the output


def test_visualization_writes_the_five_panels(trained):
    tmp, options, _ = trained
    out = tmp / 'points.png'
    run_tool('tools/analysis/visualize_point_rend.py', TINY, tmp / 'work/iter_4.pth', '--index', '1',
             '--out', out, '--zoom', '2', '--cfg-options', *options)
    image = cv2.imread(str(out))
    # Five 128 px panels (64 px zoomed twice) under a 22 px title bar, separated by 6 px gaps.
    assert image.shape == (22 + 128, 5 * 128 + 4 * 6, 3)
    points_panel = image[22:, 3 * 134:3 * 134 + 128]
    assert (points_panel == (0, 255, 255)).all(axis=2).any()  # step-1 points, yellow in BGR
