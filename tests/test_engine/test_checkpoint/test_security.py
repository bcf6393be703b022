"""Checkpoints handed to a user by an attacker, fed through every path a user loads checkpoints by.

Paths: ``tools/train.py --resume`` (a file, or ``last_checkpoint`` naming a URL), ``tools/test.py``
(``load_from``), ``load_checkpoint``, ``init_cfg=dict(type='Pretrained')``, ``MMSegInferencer`` and
``DetInferencer`` (with a config, and with ``model=None``, which builds from the checkpoint's stored
config), ``mmseg.apis.init_model`` and ``mmdet.apis.init_detector``. Remote files are served from
127.0.0.1 and cached in a temporary ``TORCH_HOME``; a marker file proves that nothing ran. The
denial-of-service files are loaded in a subprocess under a memory limit and a time-out.
"""
import functools
import http.server
import importlib.util
import inspect
import json
import os
import os.path as osp
import pickle
import re
import resource
import runpy
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModule
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import mmext  # noqa: F401  (as custom_imports does)
from mmext.engine.checkpoint import UnsafeCheckpointError
from mmext.engine.checkpoint.load import cache_path, sha256_of
from mmext.engine.checkpoint.stored_config import _fromstring

ROOT = Path(__file__).resolve().parents[3]
LOAD_ATTACK = ROOT / 'tests/scripts/load_attack.py'
CONFIGS = {'seg': ROOT / 'tests/configs/ocr_tiny.py', 'det': ROOT / 'tests/configs/dlde_tiny.py'}
# Hub names whose cached files an attacker would poison: the ImageNet backbone of the embedded and
# Cityscapes recipes, the one the R101 full recipes load, and an mmcls one.
HUB_NAMES = ('open-mmlab://resnet50_v1c', 'open-mmlab://resnet101_v1c', 'mmcls://resnet50')


def _import_beside(name):
    spec = importlib.util.spec_from_file_location(f'mmext_tests_{name}', Path(__file__).parent / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


attacks = _import_beside('attacks')


def _hub_url(name):
    scheme, _, model = name.partition('://')
    table = (mmengine_checkpoint.get_mmcls_models() if scheme == 'mmcls'
             else mmengine_checkpoint.get_external_models())
    return table[model]


def _hub_file(name):
    return osp.basename(_hub_url(name))


def _tiny_config(kind, data_root, work_dir, **options):
    cfg = Config.fromfile(CONFIGS[kind])
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(data_root)
    for split in ('val', 'test'):  # COCO-style evaluators read their own annotation file
        if 'ann_file' in cfg[f'{split}_evaluator']:
            cfg[f'{split}_evaluator'].ann_file = f'{data_root}/annotations/instances_val.json'
    cfg.merge_from_dict(dict(options, work_dir=str(work_dir)))
    return cfg


ONE_ITERATION = {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                 'default_hooks.checkpoint.interval': 1}


@pytest.fixture(scope='module')
def genuine(tmp_path_factory, data_root):
    """One-iteration checkpoints of the tiny OCR and DLDE configs, as mmengine writes them."""
    files = {}
    for kind in CONFIGS:
        work_dir = tmp_path_factory.mktemp(f'genuine_{kind}')
        Runner.from_cfg(_tiny_config(kind, data_root, work_dir, **ONE_ITERATION)).train()
        files[kind] = str(work_dir / 'iter_1.pth')
    return files


@pytest.fixture(scope='module')
def torch_home(tmp_path_factory):
    """A temporary TORCH_HOME (hub cache) and MMENGINE_HOME for the module."""
    home = tmp_path_factory.mktemp('home')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('TORCH_HOME', str(home / 'torch'))
        patch.setenv('MMENGINE_HOME', str(home / 'mmengine'))
        yield home / 'torch' / 'hub' / 'checkpoints'


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    """An HTTP server on 127.0.0.1 serving a temporary folder: (folder, base URL)."""
    folder = tmp_path_factory.mktemp('served')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    thread.join()


# Stored configs that are plain data and name code: each is refused where a model, pipeline, collate
# function or visualizer is built from it (inferencers with model=None) and harmless elsewhere.
CONFIG_ATTACKS = {
    'config model type': attacks.stored_config_model_type,
    'config pipeline step': attacks.stored_config_pipeline_step,
    'config model _scope_': functools.partial(attacks.stored_config_scope, where='model._scope_'),
    'config visualizer type': functools.partial(attacks.stored_config_scope, where='visualizer.type'),
    'config collate_fn': functools.partial(attacks.stored_config_scope, where='test_dataloader.collate_fn'),
    'config nms eval': attacks.stored_config_nms_eval,
}


@pytest.fixture(scope='module')
def attack_scope(tmp_path_factory):
    """The importable package of ``attacks.ATTACK_SCOPE`` on sys.path for the module; its import writes
    the returned marker."""
    folder = tmp_path_factory.mktemp('importable')
    marker = folder / 'imported.marker'
    attacks.attack_scope_package(folder, marker)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        yield marker
    sys.modules.pop(attacks.ATTACK_SCOPE, None)


@pytest.fixture(scope='module')
def attack_sources(tmp_path_factory, genuine, torch_home, served, attack_scope):
    """name -> (what a user passes as the checkpoint, the marker that proves code ran)."""
    tmp = tmp_path_factory.mktemp('attacks')
    folder, url = served
    sources = {}

    def marker(name):  # a name the shell payloads can use unquoted
        return tmp / (re.sub(r'\W+', '_', name) + '.marker')

    for payload, fmt in [('exec', 'zip'), ('os.system', 'legacy'), ('subprocess.Popen', 'raw-pickle')]:
        name = f'{payload} ({fmt})'
        sources[name] = (attacks.code_running(tmp / f'{payload}.pth', marker(name), payload, fmt),
                         marker(name))
    sources['config string'] = (attacks.config_string(genuine['seg'], tmp / 'cfg.pth', marker('cfg')),
                                marker('cfg'))
    for name, make in {**attacks.TAMPERING, **attacks.SECOND_ROUND_TAMPERING, **attacks.DENIAL_OF_SERVICE,
                       **attacks.SECOND_ROUND_DENIAL_OF_SERVICE}.items():
        sources[name] = (make(tmp / f'{name}.pth'), marker(name))
    for name, make in CONFIG_ATTACKS.items():
        kind = 'det' if name == 'config nms eval' else 'seg'
        sources[name] = (make(genuine[kind], tmp / f'{re.sub(r"[^a-z]+", "_", name)}.pth', marker(name)),
                         marker(name))
    attacks.code_running(folder / 'evil.pth', marker('http'))
    sources['http exec'] = (f'{url}/evil.pth', marker('http'))
    for hub_name in HUB_NAMES:
        poisoned = Path(cache_path(_hub_url(hub_name), str(torch_home)))
        poisoned.parent.mkdir(parents=True, exist_ok=True)
        attacks.code_running(poisoned, marker(hub_name))
        sources[f'poisoned cache {hub_name}'] = (hub_name, marker(hub_name))
    return sources


def _run_tool(tool, *args):
    """A tool's ``main`` in this process, with ``args`` as its command line."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, 'argv', [tool, *map(str, args)])
        runpy.run_path(str(ROOT / 'tools' / tool), run_name='__main__')


def _train_resume(source, ctx):
    work_dir = ctx.tmp / 'resume'
    shutil.rmtree(work_dir, ignore_errors=True)
    options = [f'{key}={value}' for key, value in ONE_ITERATION.items()] + ctx.data_options
    if '://' in source:  # ``--resume`` without a path resumes from what last_checkpoint names
        work_dir.mkdir()
        (work_dir / 'last_checkpoint').write_text(source)
        _run_tool('train.py', CONFIGS['seg'], '--work-dir', work_dir, '--resume', '--cfg-options', *options)
    else:
        _run_tool('train.py', CONFIGS['seg'], '--work-dir', work_dir, '--resume', source,
                  '--cfg-options', *options)


def _test_tool(source, ctx):
    _run_tool('test.py', CONFIGS['seg'], source, '--work-dir', ctx.tmp / 'test', '--cfg-options',
              *ctx.data_options)


def _inferencer(kind, with_config):
    def load(source, ctx):
        if kind == 'seg':
            from mmseg.apis import MMSegInferencer
            MMSegInferencer(model=str(CONFIGS['seg']) if with_config else None, weights=source, device='cpu')
        else:
            from mmdet.apis import DetInferencer
            DetInferencer(model=str(CONFIGS['det']) if with_config else None, weights=source, device='cpu',
                          show_progress=False)
    return load


def _init_model(source, ctx):
    from mmseg.apis import init_model
    init_model(str(CONFIGS['seg']), source, device='cpu')


def _init_detector(source, ctx):
    from mmdet.apis import init_detector
    init_detector(str(CONFIGS['det']), source, device='cpu')


def _pretrained(source, ctx):
    BaseModule(init_cfg=dict(type='Pretrained', checkpoint=source)).init_weights()


PATHS = {
    'tools/train.py --resume': _train_resume,
    'tools/test.py': _test_tool,
    'load_checkpoint': lambda source, ctx: load_checkpoint(torch.nn.Linear(1, 1), source),
    'init_cfg Pretrained': _pretrained,
    'MMSegInferencer': _inferencer('seg', with_config=True),
    'MMSegInferencer(model=None)': _inferencer('seg', with_config=False),
    'DetInferencer': _inferencer('det', with_config=True),
    'DetInferencer(model=None)': _inferencer('det', with_config=False),
    'mmseg init_model': _init_model,
    'mmdet init_detector': _init_detector,
}
ATTACKS = (['exec (zip)', 'os.system (legacy)', 'subprocess.Popen (raw-pickle)', 'config string',
            *attacks.TAMPERING, 'http exec'] + [f'poisoned cache {name}' for name in HUB_NAMES]
           + list(CONFIG_ATTACKS) + list(attacks.SECOND_ROUND_TAMPERING) + list(attacks.DENIAL_OF_SERVICE)
           + list(attacks.SECOND_ROUND_DENIAL_OF_SERVICE))
DET_PATHS = ('DetInferencer', 'DetInferencer(model=None)', 'mmdet init_detector')
# (attack, path) pairs: a detector's checkpoint goes through the detection paths only.
ATTACK_PATHS = [(attack, path) for attack in ATTACKS for path in PATHS
                if attack != 'config nms eval' or path in DET_PATHS]


@pytest.fixture
def ctx(tmp_path, data_root):
    return SimpleNamespace(tmp=tmp_path, data_options=[
        f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')])


@pytest.mark.parametrize('attack,path', ATTACK_PATHS)
def test_attack_runs_nothing(attack_sources, attack_scope, ctx, attack, path):
    source, marker = attack_sources[attack]
    # Config text stored in a checkpoint is data: loading it is harmless, except where mmengine would
    # build the model from it, where text that is not plain data, or names code, is refused.
    refused = not attack.startswith('config') or path.endswith('(model=None)')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if refused:
            with pytest.raises(UnsafeCheckpointError, match='Refused to load checkpoint') as excinfo:
                PATHS[path](source, ctx)
            if attack.startswith('poisoned cache'):
                assert 'SHA-256' in str(excinfo.value) and _hub_file(source) in str(excinfo.value)
            if attack in CONFIG_ATTACKS:  # the key path of the name, and the file
                key = {'config model type': 'model.type', 'config model _scope_': 'model._scope_',
                       'config nms eval': 'model.test_cfg.nms.type'}.get(attack, attack.split()[1])
                assert key in str(excinfo.value) and source in str(excinfo.value)
        else:
            PATHS[path](source, ctx)
    assert not marker.exists() and not attack_scope.exists()
    assert attacks.ATTACK_SCOPE not in sys.modules


@pytest.mark.parametrize('path', list(PATHS))
def test_genuine_checkpoint_loads_through_every_path(genuine, ctx, path):
    """The mmseg (OCR) and mmdet (DLDE) checkpoints mmengine writes load through each path; resume
    restarts at the saved iteration."""
    kind = 'det' if 'Det' in path or 'detector' in path else 'seg'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        PATHS[path](genuine[kind], ctx)
    assert not [w for w in caught if 'mmext' in str(w.message)]  # e.g. "ignored the stored config"


def test_every_attack_is_live(genuine, tmp_path):
    """Without mmext, each code-running file runs its code: mmengine's stored-config parser executes the
    config text, and a full unpickler runs the pickles."""
    marker = tmp_path / 'config.marker'
    source = attacks.config_string(genuine['seg'], tmp_path / 'cfg.pth', marker)
    _fromstring(torch.load(source, weights_only=False)['meta']['cfg'], '.py')  # mmengine's own parser
    assert marker.exists()
    for payload, fmt in [('exec', 'zip'), ('os.system', 'legacy'), ('subprocess.Popen', 'raw-pickle')]:
        marker = tmp_path / f'{fmt}.marker'
        source = attacks.code_running(tmp_path / f'{fmt}.pth', marker, payload, fmt)
        if fmt == 'raw-pickle':
            with open(source, 'rb') as f:
                pickle.load(f).get('meta')['note'].wait()
        else:
            torch.load(source, weights_only=False)
        assert marker.exists(), payload


@pytest.mark.parametrize('attack', list(CONFIG_ATTACKS))
def test_config_attacks_are_live(genuine, tmp_path, monkeypatch, attack):
    """Without mmext's reading of stored configs, each plain-data config runs code when the inferencer
    builds from it (model, pipeline, collate function, visualizer) or, for nms, when mmcv's batched_nms
    reads it at the first prediction."""
    from mmcv.ops import batched_nms
    from mmdet.apis import DetInferencer
    from mmengine.infer import BaseInferencer
    from mmseg.apis import MMSegInferencer
    scope, marker = 'mmext_attack_scope_live', tmp_path / 'marker'
    attacks.attack_scope_package(tmp_path, marker, scope)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(BaseInferencer, '_init_model', BaseInferencer._init_model.__wrapped__)
    make = CONFIG_ATTACKS[attack]
    kind = 'det' if attack == 'config nms eval' else 'seg'
    options = dict(scope=scope) if 'scope' in inspect.signature(make).parameters else {}
    source = make(genuine[kind], tmp_path / 'attack.pth', marker, **options)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if kind == 'seg':
                MMSegInferencer(model=None, weights=source, device='cpu')
            else:
                nms = DetInferencer(model=None, weights=source, device='cpu', show_progress=False).cfg.model
                batched_nms(torch.tensor([[0., 0., 4., 4.]]), torch.tensor([0.9]), torch.tensor([0]),
                            nms.test_cfg.nms.to_dict())
    except Exception:  # most payloads break the build after they ran
        pass
    finally:
        sys.modules.pop(scope, None)
    assert marker.exists()


def test_resume_reads_the_stored_gpu_ids_without_executing(attack_sources, genuine, ctx):
    """Runner.resume compares the stored config's gpu_ids with the world size: read as data, a plain
    config still gives them; one with code is ignored with a warning (the current config rules)."""
    with pytest.warns(UserWarning, match='not plain data'):
        _train_resume(attack_sources['config string'][0], ctx)
    checkpoint = torch.load(genuine['seg'], weights_only=False)
    checkpoint['meta']['config'] = checkpoint['meta']['cfg'] + '\ngpu_ids = [0, 1]\n'
    plain = ctx.tmp / 'gpu_ids.pth'
    torch.save(checkpoint, plain)
    with pytest.raises(RuntimeError, match='Number of GPUs used for current experiment is not consistent'):
        _train_resume(str(plain), ctx)


def test_inferencer_builds_from_a_plain_stored_config(genuine):
    """model=None builds the model from the checkpoint's stored config when it is plain data."""
    from mmdet.apis import DetInferencer
    from mmseg.apis import MMSegInferencer
    seg = MMSegInferencer(model=None, weights=genuine['seg'], device='cpu')
    det = DetInferencer(model=None, weights=genuine['det'], device='cpu', show_progress=False)
    for inferencer, kind in ((seg, 'seg'), (det, 'det')):
        state = torch.load(genuine[kind], weights_only=False)['state_dict']
        for name, value in inferencer.model.state_dict().items():
            torch.testing.assert_close(value, state[name], rtol=0, atol=0)


def test_stored_custom_imports_are_not_imported(genuine, tmp_path):
    module = tmp_path / 'mmext_attack_module.py'
    marker = tmp_path / 'imported'
    module.write_text(f'open({str(marker)!r}, "w").write("imported")\n')
    checkpoint = torch.load(genuine['seg'], weights_only=False)
    for text in (checkpoint['meta'], checkpoint['message_hub']['runtime_info']):
        text['cfg'] += "\ncustom_imports = dict(imports=['mmext_attack_module'])\n"
    path = tmp_path / 'imports.pth'
    torch.save(checkpoint, path)
    from mmseg.apis import MMSegInferencer
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.warns(UserWarning, match=r"custom_imports \['mmext_attack_module'\]"):
            MMSegInferencer(model=None, weights=str(path), device='cpu')
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()


def _run_load_attack(mode, files, memory_limit, timeout):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    proc = subprocess.run([sys.executable, str(LOAD_ATTACK), mode, *map(str, files)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit, cwd=ROOT)
    assert proc.returncode == 0, f'returncode {proc.returncode}: {proc.stderr[-3000:]}'
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]


@pytest.fixture(scope='module')
def denial_of_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dos')
    makers = {**attacks.DENIAL_OF_SERVICE, **attacks.SECOND_ROUND_DENIAL_OF_SERVICE}
    return {name: make(tmp / f'{name}.pth') for name, make in makers.items()}


def test_denial_of_service_files_are_refused_quickly_in_little_memory(denial_of_service):
    """Each file is refused within 2 s, raising the peak memory by less than 64 MB (the subprocess runs
    under a 3 GiB address-space limit, so that a regression fails instead of exhausting the machine)."""
    results = _run_load_attack('mmext', denial_of_service.values(), memory_limit=3 * 2**30, timeout=120)
    assert [result['file'] for result in results] == list(denial_of_service.values())
    for name, result in zip(denial_of_service, results):
        assert result['outcome'] == 'refused', (name, result)
        assert result['seconds'] < 2 and result['peak_rss_mb_increase'] < 64, (name, result)
        assert denial_of_service[name] in result['error']
    small = ('deflated-zip-2GiB', 'colliding-int-keys', 'deep-tuple-key')
    assert max(os.path.getsize(path) for name, path in denial_of_service.items() if name not in small) < 2048
    assert max(os.path.getsize(denial_of_service[name]) for name in small[1:]) < 400 * 2**10


def test_denial_of_service_files_are_live(denial_of_service):
    """Without mmext's structure scan (allow-list only), each file hangs, crashes the process, fails for
    memory, or takes hundreds of MB or seconds."""
    hashing, crashing = denial_of_service['nested-tuple-key'], denial_of_service['deep-tuple-key']
    others = [path for path in denial_of_service.values() if path not in (hashing, crashing)]
    with pytest.raises(subprocess.TimeoutExpired):
        _run_load_attack('unguarded', [hashing], memory_limit=4 * 2**30, timeout=20)
    with pytest.raises(AssertionError, match='Segmentation fault|returncode'):
        _run_load_attack('unguarded', [crashing], memory_limit=3 * 2**30, timeout=60)
    results = _run_load_attack('unguarded', others, memory_limit=3 * 2**30, timeout=240)
    assert [result['file'] for result in results] == others
    for result in results:
        assert result['outcome'] == 'error' or result['peak_rss_mb_increase'] > 300 or (
            result['seconds'] > 1), result


def test_tampering_leaves_the_class_table_alone(attack_sources):
    table = dict(HistoryBuffer._statistics_methods)
    with pytest.raises(UnsafeCheckpointError, match="statistics methods registered in this process"):
        _load_checkpoint(attack_sources['swapped-statistics'][0])
    assert HistoryBuffer._statistics_methods == table
    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    assert buffer.statistics('mean') == 2.0


def test_cached_file_with_the_right_hash_loads(genuine, torch_home, served):
    """A download is checked against the hash in its name when fetched and at every load from the
    cache; the genuine file passes both, through http and a user's open_mmlab.json entry."""
    folder, url = served
    name = f'tiny_ocr-{sha256_of(genuine["seg"])[:8]}.pth'
    shutil.copy(genuine['seg'], folder / name)
    first = _load_checkpoint(f'{url}/{name}')
    assert Path(cache_path(f'{url}/{name}', str(torch_home))).is_file()
    mmengine_home = Path(os.environ['MMENGINE_HOME'])
    mmengine_home.mkdir(exist_ok=True)
    (mmengine_home / 'open_mmlab.json').write_text(json.dumps({'tiny_ocr': f'{url}/{name}'}))
    again = _load_checkpoint('open-mmlab://tiny_ocr')  # from the cache
    for key, value in first['state_dict'].items():
        torch.testing.assert_close(again['state_dict'][key], value, rtol=0, atol=0)


def test_download_with_the_wrong_hash_is_refused_and_not_cached(genuine, torch_home, served):
    folder, url = served
    shutil.copy(genuine['seg'], folder / 'tiny_ocr-00000000.pth')
    with pytest.raises(UnsafeCheckpointError, match='invalid hash value'):
        _load_checkpoint(f'{url}/tiny_ocr-00000000.pth')
    assert not Path(cache_path(f'{url}/tiny_ocr-00000000.pth', str(torch_home))).exists()


def test_http_download_is_unpickled_with_weights_only(attack_sources):
    """The served file has no hash in its name: it is downloaded and cached, then refused by the
    restricted unpickler (torch.hub would have unpickled it with weights_only=False)."""
    source, marker = attack_sources['http exec']
    with pytest.raises(UnsafeCheckpointError, match=r'builtins\.exec.*almost certainly malicious'):
        _load_checkpoint(source)
    assert not marker.exists()


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_refuse_as_a_user_runs_them(attack_sources, ctx, tool):
    """The command lines themselves, in a new process: they fail naming the refusal; nothing ran."""
    source, marker = attack_sources['exec (zip)']
    if tool == 'train.py':
        args = [CONFIGS['seg'], '--resume', source]
    else:
        args = [CONFIGS['seg'], source]
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / tool), *map(str, args), '--work-dir',
                           str(ctx.tmp / 'work'), '--cfg-options', *ctx.data_options], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'UnsafeCheckpointError: Refused to load checkpoint' in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize('text', ['gpu_ids = {(0, [1])}', 'gpu_ids = range(10**30)',
                                  'gpu_ids = ' + '-' * 100000 + '1'])
def test_resume_ignores_a_stored_config_that_is_not_plain_data(genuine, ctx, text):
    """A set holding a list, a range whose len() overflows, text nested past the parser: warned about and
    ignored by --resume (which resumes), refused by an inferencer that would build from it."""
    source = attacks.stored_config_not_plain(genuine['seg'], ctx.tmp / 'stored.pth', text)
    with pytest.warns(UserWarning, match='not plain data'):
        _train_resume(source, ctx)
    with pytest.raises(UnsafeCheckpointError, match='not plain data'):
        _inferencer('seg', with_config=False)(source, ctx)


@pytest.fixture(scope='module')
def genuine_with_numpy_meta(genuine, tmp_path_factory):
    """The genuine checkpoints with numpy values of the dtypes hooks store in ``meta``: a bool flag, a
    uint8 palette, float16 and int16 statistics, a complex128 value."""
    tmp, files = tmp_path_factory.mktemp('numpy_meta'), {}
    for kind, path in genuine.items():
        checkpoint = torch.load(path, weights_only=False)
        checkpoint['meta'].update(flag=np.bool_(True), palette=np.arange(12, dtype=np.uint8).reshape(4, 3),
                                  half=np.float16(0.5), counts=np.arange(3, dtype=np.int16),
                                  phase=np.complex128(1 + 2j))
        files[kind] = str(tmp / f'{kind}.pth')
        torch.save(checkpoint, files[kind])
    return files


@pytest.mark.parametrize('path', list(PATHS))
def test_genuine_checkpoint_with_numpy_meta_loads_through_every_path(genuine_with_numpy_meta, ctx, path):
    kind = 'det' if path in DET_PATHS else 'seg'
    PATHS[path](genuine_with_numpy_meta[kind], ctx)
    meta = _load_checkpoint(genuine_with_numpy_meta[kind])['meta']
    assert meta['flag'] is np.True_ and meta['palette'].dtype == np.uint8 and meta['phase'] == 1 + 2j


def test_urls_ending_in_the_same_file_name_are_cached_apart(genuine, tmp_path, torch_home, served):
    """http://host/a/model.pth and http://host/b/model.pth are two downloads, each loaded as served."""
    folder, url = served
    other = tmp_path / 'other.pth'
    checkpoint = torch.load(genuine['seg'], weights_only=False)
    checkpoint['meta']['which'] = 'b'
    torch.save(checkpoint, other)
    for sub, source in (('a', genuine['seg']), ('b', other)):
        (folder / sub).mkdir(exist_ok=True)
        shutil.copy(source, folder / sub / 'model.pth')
    first, second = (_load_checkpoint(f'{url}/{sub}/model.pth') for sub in 'ab')
    assert 'which' not in first['meta'] and second['meta']['which'] == 'b'
    assert _load_checkpoint(f'{url}/b/model.pth')['meta']['which'] == 'b'  # from the cache


@pytest.mark.parametrize('suffix', ['', 'models/'])
def test_url_without_a_file_name_is_a_clear_error(served, suffix):
    _, url = served
    with pytest.raises(ValueError, match='names no file'):
        _load_checkpoint(f'{url}/{suffix}')


@pytest.mark.parametrize('weights_only', [True, False], ids=['torch-default', 'weights-only-off'])
def test_scheme_registered_after_import_loads_through_mmext(attack_sources, denial_of_service, weights_only):
    """A loader registered after ``import mmext`` (and after every patch) is wrapped when looked up:
    its torch.load is mmext's, even when it asks for weights_only=False."""
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_late(filename, map_location=None):
        return torch.load(filename[len('mmext-late://'):], map_location=map_location,
                          weights_only=weights_only)

    CheckpointLoader.register_scheme('mmext-late://', load_from_late)
    try:
        source, marker = attack_sources['exec (zip)']
        with pytest.raises(UnsafeCheckpointError, match=r'builtins\.exec'):
            _load_checkpoint(f'mmext-late://{source}')
        assert not marker.exists()
        with pytest.raises(UnsafeCheckpointError, match='before unpickling anything'):
            _load_checkpoint(f'mmext-late://{denial_of_service["void-scalar-1e9"]}')
    finally:
        del CheckpointLoader._schemes['mmext-late://']
    assert torch.load is torch.serialization.load  # restored once no loader runs
