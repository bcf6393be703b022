"""The command line of tools/generate_synthetic_shapes.py."""
import importlib.util
import json
from pathlib import Path

import pytest

TOOL = Path(__file__).parents[2] / 'tools/generate_synthetic_shapes.py'
SIZE = 64


@pytest.fixture(scope='module')
def main():
    """The tool's ``main`` (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location('generate_synthetic_shapes', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_command_line(main, tmp_path, capsys):
    root = tmp_path / 'shapes'
    argv = ['--data-root', str(root), '--seed', '3', '--num-train', '2', '--num-val', '1',
            '--size', str(SIZE)]
    assert main(argv) == root
    assert str(root) in capsys.readouterr().out
    meta = json.loads((root / 'meta.json').read_text())
    assert (meta['seed'], meta['num_train'], meta['num_val'], meta['size']) == (3, 2, 1, SIZE)
    inode = root.stat().st_ino
    main(argv)
    assert root.stat().st_ino == inode
    main(argv + ['--force'])
    assert root.stat().st_ino != inode


def test_command_line_refuses_other_parameters_naming_both(main, tmp_path, capsys):
    root = tmp_path / 'shapes'
    argv = ['--data-root', str(root), '--num-train', '2', '--num-val', '1', '--size', str(SIZE)]
    main(argv)
    meta = (root / 'meta.json').read_bytes()
    with pytest.raises(SystemExit) as stopped:
        main(argv + ['--seed', '1'])
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    assert str(root) in error and 'seed=0, num_train=2' in error and 'seed=1, num_train=2' in error
    assert (root / 'meta.json').read_bytes() == meta
