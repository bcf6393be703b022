"""mmext as a plugin of one host or both: mmext.seg needs only mmseg, mmext.det only mmdet, the pure
parts neither; ``import mmext`` registers whichever hosts are installed. Each test runs in a fresh
process, with a host made unimportable by tests/scripts/without_hosts.py."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WITHOUT_HOSTS = ROOT / 'tests/scripts/without_hosts.py'
OPENMMLAB = ('mmengine', 'mmcv', 'mmseg', 'mmdet')


def _python(hosts_absent, *args, timeout=300):
    proc = subprocess.run([sys.executable, str(WITHOUT_HOSTS), ','.join(hosts_absent), *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _loaded_after(code, hosts_absent=()):
    """The OpenMMLab packages in ``sys.modules`` after running ``code`` in a fresh process."""
    report = f"import json, sys; print(json.dumps([m for m in {OPENMMLAB!r} if sys.modules.get(m)]))"
    return json.loads(_python(hosts_absent, '-c', f'{code}\n{report}').stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('package', ['mmext.ops', 'mmext.datasets'])
def test_pure_packages_import_no_openmmlab_package(package):
    assert _loaded_after(f'import {package}') == []


def test_pure_packages_patch_nothing():
    # importing mmengine afterwards finds it unpatched: no package-wide side effect
    code = ('import mmext.ops\nimport mmengine.runner.checkpoint as c\n'
            "assert not getattr(c.CheckpointLoader._schemes[''], '_mmext_checkpoint_loader', False)")
    assert _loaded_after(code) == ['mmengine']


def test_import_mmext_registers_hosts_when_first_used():
    code = ('import logging; logging.basicConfig(level=logging.INFO)\nimport mmext\n'
            'assert mmext.registered == {"mmext.seg": "registered when first used", '
            '"mmext.det": "registered when first used"}, mmext.registered\n'
            'from mmengine.registry import init_default_scope\nfrom mmseg.registry import MODELS\n'
            'import mmext.engine.patches as patches\nassert patches._patched  # before any checkpoint\n'
            "init_default_scope('mmseg')\n"
            "assert MODELS.get('ObjectContextHead').__module__.startswith('mmext.seg')")
    assert set(_loaded_after(code)) == set(OPENMMLAB)


def test_import_mmext_registers_an_imported_host_at_once():
    code = ('import mmseg.registry\nimport mmext\n'
            "assert mmext.registered['mmext.seg'] == 'registered', mmext.registered\n"
            "from mmseg.registry import MODELS\nassert 'ObjectContextHead' in MODELS.module_dict")
    _loaded_after(code)


def test_import_mmext_without_either_host_names_both():
    proc = subprocess.run([sys.executable, str(WITHOUT_HOSTS), 'mmseg,mmdet', '-c', 'import mmext'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'neither is installed' in proc.stderr and 'mmsegmentation' in proc.stderr


@pytest.mark.parametrize('absent, package, config', [
    ('mmdet', 'mmext.seg', 'tests/configs/ocr_tiny.py'),
    ('mmseg', 'mmext.det', 'tests/configs/dlde_tiny.py'),
])
def test_one_host_trains_and_tests(tmp_path, absent, package, config):
    """With the other host not installed: ``import mmext`` registers the one present and says the other
    is absent; the config (whose runtime imports ``package``) trains and its checkpoint tests."""
    code = ('import logging; logging.basicConfig(level=logging.INFO)\nimport mmext\n'
            f'assert list(mmext.registered) == [{package!r}], mmext.registered')
    log = _python([absent], '-c', code).stderr
    assert 'not installed' in log and {'mmdet': 'mmdet', 'mmseg': 'mmsegmentation'}[absent] in log
    data_root = tmp_path / 'data'
    options = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    if absent == 'mmseg':
        options += [f'{split}_evaluator.ann_file={data_root}/annotations/instances_val.json'
                    for split in ('val', 'test')]
    _python([absent], 'tools/train.py', config, '--work-dir', tmp_path / 'work', '--cfg-options', *options)
    proc = _python([absent], 'tools/test.py', config, tmp_path / 'work/iter_4.pth', '--work-dir',
                   tmp_path / 'test', '--cfg-options', *options)
    log = proc.stdout + proc.stderr
    assert ('mIoU' if absent == 'mmdet' else 'bbox_mAP') in log


@pytest.mark.parametrize('package, host, absent, head', [
    ('mmext.seg', 'mmseg', 'mmdet', 'ObjectContextHead'), ('mmext.det', 'mmdet', 'mmseg', 'DLDEHead')])
def test_register_all_modules_is_the_hosts_with_mmexts_classes(package, host, absent, head):
    # as mmseg.utils.register_all_modules: the host's modules, its default scope, and here mmext's too
    code = (f'import {package}\n{package}.register_all_modules()\n'
            'from mmengine.registry import DefaultScope\n'
            f"assert DefaultScope.get_current_instance().scope_name == '{host}'\n"
            f'from {host}.registry import MODELS\n'
            f"assert MODELS.get('{head}').__module__.startswith('{package}')\n"
            f"assert MODELS.get('FPN') is not None  # one of {host}'s own")
    assert absent not in _loaded_after(code, hosts_absent=[absent])
