"""Config text stored in checkpoints is read as data, never executed, and names only registered code."""
from pathlib import Path

import pytest
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.engine.checkpoint import UnsafeCheckpointError, config_text_as_data
from mmext.engine.checkpoint.stored_config import NotPlainData, check_stored_names, stored_config_as_data


def test_pretty_text_round_trips_as_data():
    cfg = Config(dict(model=dict(type='EncoderDecoder', decode_head=[dict(type='FCNHead', channels=16)],
                                 test_cfg=dict(mode='whole')),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=-1e-05, momentum=0.9)),
                      crop_size=(64, 64), classes=('ring', 'disc'), palette=[[1, 2, 3]], flag=None,
                      mapping={1: 'a', 'b c': 2}, gpu_ids=range(2)))
    data = config_text_as_data(cfg.pretty_text)
    assert data == cfg.to_dict()  # gpu_ids = range(0, 2), as mmcv-era tools stored it
    assert data['optim_wrapper']['optimizer']['lr'] == -1e-05 and data['crop_size'] == (64, 64)


@pytest.mark.parametrize('text', [
    "a = 1\nopen('marker', 'w')",                # a statement that is not an assignment
    "a = __import__('os').system('true')",       # a call other than dict(...)
    "a = dict(**{'type': 'x'})",                 # dict with ** (could splat anything)
    "a = [x for x in range(3)]",                 # comprehension
    "a = lambda: 0",
    "import os",
    "a.b = 1",                                   # attribute target
    "a = 1 +",                                   # not Python
    "a = b",                                     # a name
], ids=['call-statement', 'call', 'dict-splat', 'comprehension', 'lambda', 'import', 'attribute',
        'syntax', 'name'])
def test_anything_but_literals_is_refused(text):
    with pytest.raises(NotPlainData):
        config_text_as_data(text)


def test_fromstring_is_data_only_inside_the_block(tmp_path):
    marker = tmp_path / 'marker'
    code = f"a = 1\nopen({str(marker)!r}, 'w').write('x')\n"
    with stored_config_as_data('ckpt.pth', on_code='ignore'):
        with pytest.warns(UserWarning, match='not plain data'):
            assert Config.fromstring(code, '.py').to_dict() == {}
        assert Config.fromstring('gpu_ids = [0, 1]\n', '.py').gpu_ids == [0, 1]
    with stored_config_as_data('ckpt.pth', on_code='raise'):
        with pytest.raises(UnsafeCheckpointError, match=r'ckpt\.pth: its stored config is not plain data'):
            Config.fromstring(code, '.py')
    assert not marker.exists()
    assert Config.fromstring(code, '.py').a == 1  # outside, mmengine's own parser: user text runs
    assert marker.exists()


ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted(str(path.relative_to(ROOT)) for folder in ('configs', 'tests/configs')
                 for path in (ROOT / folder).rglob('*.py') if '_base_' not in path.parts)


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_recipe_stored_as_data_names_only_registered_code(recipe, monkeypatch):
    """What a checkpoint of each recipe stores (its pretty_text) passes the name check: no genuine config
    is refused by an inferencer that builds from it."""
    monkeypatch.syspath_prepend(str(ROOT / 'tests/scripts'))  # the distributed test configs' probe
    cfg = Config.fromfile(ROOT / recipe)
    data = config_text_as_data(cfg.pretty_text)
    data.pop('custom_imports', None)
    assert check_stored_names(data) is None


@pytest.mark.parametrize('edit,where', [
    (lambda d: d['model'].update(type='os.system'), 'model.type'),
    (lambda d: d['model'].update(type='antigravity'), 'model.type'),  # importable module, not registered
    (lambda d: d['model'].update(type='mmseg.system'), 'model.type'),  # a scope, a name it lacks
    (lambda d: d['model'].update(_scope_='antigravity'), 'model._scope_'),
    (lambda d: d.update(default_scope='antigravity'), 'default_scope'),
    (lambda d: d['test_dataloader']['dataset']['pipeline'].append(dict(type='subprocess.run')),
     'test_dataloader.dataset.pipeline[2].type'),
    (lambda d: d['test_dataloader'].update(collate_fn='antigravity.x'), 'test_dataloader.collate_fn'),
    (lambda d: d['model'].update(test_cfg=dict(nms=dict(type='__import__("os")'))),
     'model.test_cfg.nms.type'),
    (lambda d: d['model'].update(type=['EncoderDecoder']), 'model.type'),
], ids=['dotted', 'module', 'scope-lacks-it', '_scope_', 'default_scope', 'pipeline', 'collate_fn', 'nms',
        'not-a-string'])
def test_names_that_would_import_code_are_found_with_their_key_path(edit, where):
    data = dict(default_scope='mmseg', model=dict(type='EncoderDecoder'),
                test_dataloader=dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'),
                                                            dict(type='mmseg.PackSegInputs')])))
    assert check_stored_names(data) is None
    edit(data)
    assert check_stored_names(data)[0] == where
