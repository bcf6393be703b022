"""Metafiles (configs/*/metafile.yaml): the schema mmseg and mmdet use, every config they name loads,
and every measured number equals the Results tables of docs/model_zoo.md (the one place of those
figures). Also the training-curve tool."""
import functools
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
METAFILES = sorted(ROOT.glob('configs/*/metafile.yaml'))
# metafile key (metric or metadata) -> model_zoo.md column; every measured key must be here
COLUMNS = {'mIoU': 'mIoU', 'mBIoU': 'mBIoU', 'coarse mIoU': 'coarse mIoU', 'coarse mBIoU': 'coarse mBIoU',
           'IoU.ring': 'IoU.ring', 'box AP': 'bbox mAP', 'box AP50': 'mAP@50', 'Memory (GB)': 'Mem (GB)',
           'Training Memory (GB)': 'Mem (GB)', 'Training Time (min)': 'Train time',
           'inference time (ms/im)': 'Inf time (fps)'}
SUFFIX = re.compile(r'^(.*?)(?: \((seed 1|mean of seeds 0, 1)\))?$')


def _load(path):
    return yaml.safe_load(path.read_text())


@functools.lru_cache(maxsize=None)
def _config(path):
    """Config.fromfile is slow on ``mmseg::`` / ``mmdet::`` bases: each config is read once."""
    return Config.fromfile(ROOT / path, import_custom_modules=False)


def _models():
    return [(path, model) for path in METAFILES for model in _load(path)['Models']]


def _recipes(path):
    """The full recipes that a metafile lists in comments (they have no Results)."""
    return re.findall(r'^#\s+- Config: (\S+)$', path.read_text(), flags=re.M)


def _results(model):
    """mmseg writes one Results dict, mmdet a list of them."""
    results = model['Results']
    return results if isinstance(results, list) else [results]


def _zoo_sections():
    """docs/model_zoo.md's Results subsections: title -> (text, {config cell: {column: cell}})."""
    text = (ROOT / 'docs/model_zoo.md').read_text()
    results = text[text.index('\n## Results'):]
    results = results[:results.find('\n## ', 1)] if '\n## ' in results[1:] else results
    sections = {}
    for chunk in results.split('\n### ')[1:]:
        title, _, body = chunk.partition('\n')
        rows = [line for line in body.splitlines() if line.startswith('|')]
        table = {}
        if rows:
            header = [c.strip() for c in rows[0].strip('|').split('|')]
            for line in rows[2:]:
                cells = dict(zip(header, (c.strip() for c in line.strip('|').split('|'))))
                table[cells['config']] = cells
        sections[title.strip()] = (body, table)
    return sections


def _config_cell(model):
    """How model_zoo.md's config column names a model: a link, or the config and its --cfg-options."""
    config = model['Config']
    name = Path(config).name
    if 'Config Options' in model:
        return f"`{name} --cfg-options {model['Config Options']}`"
    return f'[{name}](../{config})'


def _zoo_row(model):
    for title, (body, table) in _zoo_sections().items():
        if _config_cell(model) in table:
            return body, table[_config_cell(model)]
    return None, None


def _cell_values(cell):
    """'**70.25 / 70.16** (mean 70.21)' -> {'seed 0': 70.25, 'seed 1': 70.16, 'mean': 70.21};
    a single number holds for both seeds."""
    mean = re.search(r'\(mean ([\d.]+)\)', cell)
    seeds = [float(v) for v in re.findall(r'\d+(?:\.\d+)?', re.sub(r'\(.*?\)', '', cell))]
    values = {'seed 0': seeds[0], 'seed 1': seeds[-1]}
    if mean:
        values['mean of seeds 0, 1'] = float(mean.group(1))
    return values


def _zoo_value(key, body, row):
    """model_zoo.md's number for a metafile key (...); the table gives
    speed in images/s, the metafile in ms per image."""
    base, which = SUFFIX.match(key).groups()
    column = COLUMNS[base]
    if column in row:
        value = _cell_values(row[column])[which or 'seed 0']
    # PointRend quotes its time and speed in the text, not in the table
    elif base == 'Training Time (min)':
        minutes, seconds = re.search(r'\*\*(\d+) min (\d+) s\*\*', body).groups()
        return int(minutes) + int(seconds) / 60
    elif base == 'inference time (ms/im)':
        value = float(re.search(r'([\d.]+) img/s', body).group(1))
    else:
        raise KeyError(f'model_zoo.md has no {column!r} for {key!r}')
    return 1000 / value if base == 'inference time (ms/im)' else value


def _walk(value, path=()):
    """(key path, leaf) pairs of a parsed YAML tree; empty dicts and lists are leaves."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _walk(v, path + (k,))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _walk(v, path + (i,))
    else:
        yield path, value


def test_every_method_has_a_metafile():
    assert [p.parent.name for p in METAFILES] == ['dlde', 'net2vec', 'ocrnet', 'point_rend']


@pytest.mark.parametrize('path', METAFILES, ids=lambda p: p.parent.name)
def test_metafile_schema(path):
    meta = _load(path)
    assert set(meta) == {'Collections', 'Models'}
    collections = {c['Name']: c for c in meta['Collections']}
    for collection in collections.values():
        assert {'Name', 'Metadata', 'Paper', 'README', 'Code'} <= set(collection)
        assert set(collection['Paper']) == {'Title', 'URL'}
        assert (ROOT / collection['README']).is_file()
        url = collection['Code']['URL']
        assert url.startswith('https://') or (ROOT / url).is_file(), url
    for model in meta['Models']:
        assert {'Name', 'In Collection', 'Config', 'Metadata', 'Results'} <= set(model)
        assert model['In Collection'] in collections
        assert 'Weights' not in model  # nothing is published
        resources = model['Metadata'].get('Training Resources',
                                          collections[model['In Collection']]['Metadata'].get(
                                              'Training Resources'))
        assert resources == '2 CPU cores (no GPU)'
        for result in _results(model):
            assert set(result) == {'Task', 'Dataset', 'Metrics'} and result['Metrics']
            assert result['Dataset'] == 'Synthetic shapes (embedded)'
            for value in result['Metrics'].values():
                assert isinstance(value, (int, float)) or value == 'TBD', value
    # OpenMMLab's metafile rule: no null, empty string or empty list anywhere
    for key, value in _walk(meta):
        assert value not in (None, '', [], {}), key


def test_model_names_are_unique():
    names = [model['Name'] for _, model in _models()]
    assert len(names) == len(set(names))


def test_placeholders_only_in_net2vec_results():
    for path, model in _models():
        for key, value in _walk(model):
            if value == 'TBD':
                assert path.parent.name == 'net2vec' and key[0] == 'Results', (path, key)


@pytest.mark.parametrize('config', sorted({m['Config'] for _, m in _models()}
                                          | {c for p in METAFILES for c in _recipes(p)}))
def test_configs_named_by_metafiles_load(config):
    assert _config(config).model.type


def test_full_recipes_are_listed():
    listed = {c for p in METAFILES for c in _recipes(p)}
    recipes = {str(p.relative_to(ROOT)) for d in ('ocrnet', 'point_rend', 'dlde')
               for p in (ROOT / 'configs' / d).glob('*.py')}
    assert listed == recipes


def test_metadata_matches_the_configs():
    for _, model in _models():
        cfg = _config(model['Config'])
        meta = model['Metadata']
        assert meta['Batch Size'] == cfg.train_dataloader.batch_size
        assert meta.get('lr schd', meta.get('Iterations')) == cfg.train_cfg.max_iters


@pytest.mark.parametrize('model', [m for _, m in _models()], ids=lambda m: m['Name'])
def test_numbers_equal_model_zoo(model):
    if any(value == 'TBD' for _, value in _walk(model['Results'])):
        pytest.skip('not measured yet (TBD)')
    body, row = _zoo_row(model)
    assert row is not None, f'model_zoo.md Results has no row whose config is {_config_cell(model)}'
    assert model['Metadata']['backbone'].startswith(row.get('Backbone', ''))
    if 'Lr schd' in row:
        schedule = model['Metadata'].get('lr schd', model['Metadata'].get('Iterations'))
        assert row['Lr schd'] == f'{schedule} it'
    if 'Crop Size' in row:
        assert row['Crop Size'] == '{}×{}'.format(*re.findall(r'\d+', model['Metadata']['crop size']))
    checked = 0
    for result in _results(model):
        for key, value in result['Metrics'].items():
            assert value == pytest.approx(_zoo_value(key, body, row), abs=1e-9), key
            checked += 1
    for key in ('Memory (GB)', 'Training Memory (GB)', 'Training Time (min)'):
        if key in model['Metadata']:
            assert model['Metadata'][key] == pytest.approx(_zoo_value(key, body, row), abs=0.005), key
            checked += 1
    for speed in model['Metadata'].get('inference time (ms/im)', []):
        assert speed['value'] == pytest.approx(_zoo_value('inference time (ms/im)', body, row), abs=0.005)
        assert speed['batch size'] == 1 and speed['hardware'] == '2 CPU cores'
        checked += 1
    assert checked >= 3


def test_every_model_zoo_results_row_has_a_model():
    cells = {_config_cell(model) for _, model in _models()}
    for title, (_, table) in _zoo_sections().items():
        for cell in table:
            assert cell in cells, f'model_zoo.md {title}: no metafile model for {cell}'


# the training-curve tool


def _tool():
    spec = importlib.util.spec_from_file_location(
        'plot_training_curves', ROOT / 'tools/analysis/plot_training_curves.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_run(work_dir, stamp, losses, metrics=None, step=None, epoch=None):
    lines = [dict(lr=1e-3, loss=loss, iter=i, step=i, **({'epoch': epoch} if epoch else {}))
             for i, loss in losses]
    if metrics:
        lines.append(dict(metrics, data_time=0.01, time=0.1, step=step))
    path = work_dir / stamp / 'vis_data/scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    return path


def test_curve_tool_writes_png(tmp_path):
    work = tmp_path / 'work'
    _write_run(work, '20240101_000000', [(10, 2.0), (20, 1.5)], {'mIoU': 10.0}, 20)
    _write_run(work, '20240102_000000', [(10, 1.8), (20, 1.2), (30, 0.9)], {'mIoU': 42.5, 'aAcc': 90.0}, 30)
    _write_run(work, '20240103_000000', [], {'mIoU': 41.0}, 0)  # a tools/test.py folder: skipped
    other = tmp_path / 'other'
    _write_run(other, '20240101_000000', [(10, 1.0), (20, 0.8), (30, 0.6)], {'mIoU': 50.0}, 30)
    out = tmp_path / 'curves.png'
    proc = subprocess.run([sys.executable, str(ROOT / 'tools/analysis/plot_training_curves.py'),
                           '--runs', f'mine={work}', str(other), '--out', str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '20240102_000000' in proc.stdout and '20240103_000000' not in proc.stdout
    assert 'mine mIoU: 42.50 at it 30' in proc.stdout and 'other mIoU: 50.00 at it 30' in proc.stdout


def test_curve_tool_reads_runs(tmp_path):
    tool = _tool()
    _write_run(tmp_path / 'a', '20240101_000000', [(10, 2.0)], {'mIoU': 1.0}, 10)
    _write_run(tmp_path / 'a', '20240102_000000', [(10, 1.0)], {'mIoU': 2.0}, 10)
    runs = tool.load_runs([str(tmp_path / 'a')], all_folders=True)
    assert [r.label for r in runs] == ['a (20240101_000000)', 'a (20240102_000000)']
    assert [r.val['mIoU'] for r in runs] == [[(10, 1.0)], [(10, 2.0)]]
    assert tool.choose_metrics(runs) == ['mIoU']
    with pytest.raises(ValueError, match='aAcc'):
        tool.choose_metrics(runs, ['aAcc'])
    # epoch-based: the validation step is the epoch, drawn at that epoch's last iteration
    path = _write_run(tmp_path / 'b', '20240101_000000', [(5, 1.0), (8, 0.5)], {'coco/bbox_mAP': 0.25},
                      step=1, epoch=1)
    run = tool.read_scalars(path, 'b')
    assert run.val['coco/bbox_mAP'] == [(8, 0.25)]
    fig, summary = tool.plot([run], ['coco/bbox_mAP'])
    assert 'b coco/bbox_mAP ×100: 25.00 at it 8' in summary
    assert tool.ema([1.0, 1.0, 1.0], 0.6) == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(FileNotFoundError):
        tool.find_scalars(tmp_path / 'missing')
