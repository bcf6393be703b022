"""The benchmark tools on tiny configs: get_flops on cascade models (where mmseg's get_flops fails)
and DLDE, the head pairs' built-in side, the head benchmark's outputs and the inference benchmark with
4 test images. The tools run in this process (no start-up per tool); the counters and timers they
use are tested in tests/test_analysis/."""
import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.engine import load_analysis_config

ROOT = Path(__file__).resolve().parents[2]
TINY = {name: ROOT / f'tests/configs/{name}_tiny.py' for name in ('ocr', 'pointrend', 'dlde')}
STOCK_GET_FLOPS = (Path(importlib.util.find_spec('mmseg').origin).parent
                   / '.mim/tools/analysis_tools/get_flops.py')


def _load_tool(path: Path):
    """Import a script (tools/ is not a package) as a module, its folder first on sys.path as when it
    runs, so that it finds the modules next to it."""
    spec = importlib.util.spec_from_file_location(f'_tool_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.fixture(scope='module')
def data_options(tmp_path_factory):
    """--cfg-options that put the tiny configs' embedded data (generated on first use) in a tmp dir."""
    root = tmp_path_factory.mktemp('bench') / 'data'
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')]


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _finite_positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


# -- get_flops ----------------------------------------------------------------------------------------

def test_mmseg_get_flops_fails_on_a_cascade_config():
    stock = _load_tool(STOCK_GET_FLOPS)
    args = argparse.Namespace(config=str(TINY['ocr']), shape=[64, 64], cfg_options=None)
    with pytest.raises(AttributeError, match="'list' object has no attribute 'type'"):
        stock.inference(args, None)


def test_get_flops_counts_cascades_and_dlde_per_head(one_thread):
    get_flops = _load_tool(ROOT / 'tools/get_flops.py')
    results = {}
    for name, head in [('ocr', 'ObjectContextHead'), ('ocr', 'OCRHead'), ('pointrend', 'PointRendHead'),
                       ('pointrend', 'PointHead')]:
        cfg = load_analysis_config(str(TINY[name]), {'model.decode_head.1.type': head})
        results[head] = result = get_flops.complexity(cfg, (64, 64))
        assert result['input_shape'] == [1, 3, 64, 64]
        assert result['parts']['decode_head.0']['flops'] > 0 and result['parts']['decode_head.1']['flops'] > 0
        assert result['parts']['(outside parts)']['flops'] >= 0
        assert sum(p['params'] for p in result['parts'].values()) == result['params']
    # The same math on the same shapes: mmext's heads cost what mmseg's cost.
    assert results['ObjectContextHead'] == results['OCRHead']
    assert results['PointRendHead'] == results['PointHead']
    dlde = get_flops.complexity(load_analysis_config(str(TINY['dlde'])), (64, 64))
    assert dlde['model'] == 'RetinaNet' and dlde['input_shape'] == [1, 3, 64, 64]
    assert dlde['parts']['bbox_head']['flops'] > 0


# -- the benchmarks -----------------------------------------------------------------------------------

def test_builtin_side_of_dlde_is_configs_retinanet_r50():
    pairs = _load_tool(ROOT / 'tools/benchmarks/head_pairs.py')
    dlde = Config.fromfile(str(ROOT / 'configs/dlde_retinanet_r50.py'))
    retina = Config.fromfile(str(ROOT / 'configs/retinanet_r50.py'))
    builtin = pairs.PAIRS['dlde'].swap_head(dlde, pairs.BUILTIN)
    assert builtin.model.to_dict() == retina.model.to_dict()


def test_benchmark_heads_writes_finite_ratios(tmp_path, data_options, one_thread):
    bench = _load_tool(ROOT / 'tools/benchmarks/benchmark_heads.py')
    result = bench.main([
        '--configs', *[f'{name}={path}' for name, path in TINY.items()], '--sizes', 'embedded', '32x64@2',
        '--pointrend-sizes', '32x32', '64x64', '64x128', '--repeats', '2', '--warmup', '0',
        '--model-steps', '1', '--model-warmup', '1', '--model-images', '2', '--matmul-size', '64',
        '--devices', 'auto', '--fp32', '--out-dir', str(tmp_path), '--cfg-options', *data_options])
    assert json.loads((tmp_path / 'benchmark_heads.json').read_text()).keys() == result.keys() == {
        'environment', 'settings', 'configs', 'notes', 'devices'}
    assert result['settings']['fp32'] and not result['settings']['amp']
    if not torch.cuda.is_available():
        assert 'not run' in result['devices']['cuda']
    cpu = result['devices']['cpu']
    assert _finite_positive(cpu['dense_peak']['matmul']['gflops_per_s'])
    assert _finite_positive(cpu['dense_peak']['conv3x3']['gflops_per_s'])
    for name in TINY:
        sizes = [(r['size']['name'], r['size']['height'], r['size']['width']) for r in cpu['heads'][name]]
        assert sizes == [('embedded', 64, 64), ('32x64@2', 32, 64)]
        for rec in cpu['heads'][name]:
            assert rec['workloads'].keys() == {'forward', 'train', 'inference'}
            for kind, w in rec['workloads'].items():
                assert _finite_positive(w['ratio']['time']) and _finite_positive(w['ratio']['memory'])
                assert w['mmext']['flops'] > 0 and _finite_positive(w['mmext']['gflops_per_s'])
                if name != 'dlde':  # copied weights: the same outputs (and FLOPs) as the built-in
                    assert w['max_abs_diff'] < 1e-4, (name, kind)
                    assert w['mmext']['flops'] == w['builtin']['flops'], (name, kind)
        model = cpu['models'][name]
        assert _finite_positive(model['train_step']['ratio']['time'])
        assert _finite_positive(model['train_step']['ratio']['memory'])
        assert model['test_images'] == 2 and _finite_positive(model['inference']['mmext']['images_per_s'])
    assert [rec['size']['name'] for rec in cpu['pointrend_scaling']] == ['32x32', '64x64', '64x128']
    table = (tmp_path / 'benchmark_heads.md').read_text()
    assert '**time ratio**' in table and 'Achieved GFLOP/s' in table and 'Whole model' in table
    assert (tmp_path / 'benchmark_heads.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_benchmark_inference_times_four_images(data_options, one_thread):
    tool = _load_tool(ROOT / 'tools/benchmarks/benchmark_inference.py')
    result = tool.main([str(TINY['ocr']), '--warmup', '1', '--cfg-options', *data_options])
    assert result['images'] == 4  # the tiny config's whole test set, fewer than mmseg's 200
    assert _finite_positive(result['images_per_s']) and result['latency_seconds']['n'] == 4


def test_every_training_run_of_heads_vs_builtin_names_a_config():
    pairs = _load_tool(ROOT / 'tools/benchmarks/head_pairs.py')
    runs = [run for pair in pairs.PAIRS.values() for run in pair.training_runs()]
    assert len({run.name for run in runs}) == len(runs) == 2 * len(pairs.PAIRS)
    assert all((ROOT / run.config).is_file() for run in runs)


def test_dlde_sweep_reuses_costs_and_reads_the_trained_runs(tmp_path, monkeypatch):
    """dlde_embedding_sweep.py --costs-from: the earlier sweep's costs, the runs' final mAP per seed
    (variants under their label, missing runs as None) and the RetinaNet runs, without measuring."""
    sweep = _load_tool(ROOT / 'tools/benchmarks/dlde_embedding_sweep.py')

    def run(work_dir, bbox_map, map50):
        (tmp_path / work_dir / 't' / 'vis_data').mkdir(parents=True)
        lines = [dict(loss=1.0, step=1), {'coco/bbox_mAP': bbox_map, 'coco/bbox_mAP_50': map50, 'step': 2}]
        (tmp_path / work_dir / 't/vis_data/scalars.json').write_text('\n'.join(map(json.dumps, lines)))

    run('d32_s0', 0.529, 0.781)
    run('d32_s1', 0.093, 0.170)
    run('v32_s0', 0.534, 0.784)
    run('v32_s1', 0.516, 0.774)
    run('r1200_s0', 0.440, 0.668)
    costs = dict(train_step_ratio=1.04, inference_ratio=1.09, model_memory_ratio=1.01,
                 head_memory_ratio=1.12, head_peak_mb={'mmext': 38.8, 'builtin': 34.6},
                 model_peak_mb={'mmext': 225.4, 'builtin': 223.3})
    earlier = tmp_path / 'earlier.json'
    earlier.write_text(json.dumps(dict(environment=dict(cpu='x'), settings=dict(repeats=5),
                                       sizes=[dict(embedding_size=32, **costs)])))
    out = tmp_path / 'out'
    monkeypatch.setattr(sys, 'argv', [
        'dlde_embedding_sweep.py', '--sizes', '32', '--seeds', '0', '1', '--costs-from', str(earlier),
        '--dlde-runs', f'{tmp_path}/d{{e}}_s{{seed}}', '--dlde-variants',
        f'means_lr 0.01={tmp_path}/v{{e}}_s{{seed}}', f'unused={tmp_path}/none{{e}}_s{{seed}}',
        '--retinanet-runs', f'1200={tmp_path}/r1200_s{{seed}}', '--out-dir', str(out)])
    sweep.main()
    result = json.loads((out / 'dlde_sweep.json').read_text())
    (row,) = result['sizes']
    assert {key: row[key] for key in costs} == costs and result['costs_settings'] == dict(repeats=5)
    assert row['accuracy']['runs'] == {'0': [pytest.approx(52.9), pytest.approx(78.1)],
                                       '1': [pytest.approx(9.3), pytest.approx(17.0)]}
    assert row['accuracy']['mean_map'] == pytest.approx(31.1)
    assert list(row['variants']) == ['means_lr 0.01']  # a variant without runs is left out
    assert row['variants']['means_lr 0.01']['mean_map'] == pytest.approx(52.5)
    assert result['retinanet']['1200']['runs'] == {'0': [pytest.approx(44.0), pytest.approx(66.8)], '1': None}
    table = (out / 'dlde_sweep.md').read_text()
    assert '| 32, means_lr 0.01 | 1.040 | 1.090 | 1.12 | 1.01 | 52.5 (53.4 / 51.6) | 77.9 |' in table
    assert (out / 'dlde_sweep.png').stat().st_size > 0
