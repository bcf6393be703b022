"""``deploy.json``: what a deployed model's user needs besides the ONNX file (input layout and size,
classes, palette, normalisation, outputs, versions), and the checks of an export directory and of an
input batch against it."""
import json
from pathlib import Path
from typing import Optional

import numpy as np

SPEC_FILE = 'deploy.json'
ONNX_FILE = 'end2end.onnx'
FORMAT = 'mmext.deploy/1'


class DeployError(RuntimeError):
    """An export directory, an input batch or a model that mmext.deploy cannot serve, with the reason."""


def read_spec(export_dir) -> dict:
    """The ``deploy.json`` of ``export_dir``, after checking that it and its ONNX file exist."""
    export_dir = Path(export_dir)
    spec_path = export_dir / SPEC_FILE
    if not export_dir.is_dir():
        raise DeployError(f'{export_dir} is not a directory; tools/deploy/export.py writes one')
    if not spec_path.is_file():
        raise DeployError(f'{export_dir} has no {SPEC_FILE}: not an export directory of '
                          'tools/deploy/export.py (or an incomplete one); export again')
    try:
        spec = json.loads(spec_path.read_text())
    except json.JSONDecodeError as error:
        raise DeployError(f'{spec_path} is not valid JSON ({error}); export again') from None
    if not isinstance(spec, dict) or spec.get('format') != FORMAT:
        found = spec.get('format') if isinstance(spec, dict) else type(spec).__name__
        raise DeployError(f'{spec_path}: format {found!r}, expected {FORMAT!r}; export again')
    onnx_file(export_dir, spec)
    return spec


def onnx_file(export_dir, spec: dict) -> Path:
    """The ONNX file ``spec`` names, symbolic links resolved: a file inside ``export_dir``, or a
    :class:`DeployError` naming it and why.

    The backends are given this resolved path, so that the file checked here is the file they read and
    its external data resolves from the directory the checks resolve it from.
    """
    export_dir = Path(export_dir)
    name = spec.get('onnx')
    if not isinstance(name, str) or not name or '\0' in name:
        raise DeployError(f'{export_dir / SPEC_FILE}: "onnx" must name a file, got {name!r}')
    try:
        path = (export_dir / name).resolve()
    except (OSError, RuntimeError) as error:  # a symbolic link loop
        raise DeployError(f'{export_dir / SPEC_FILE}: the ONNX file {name!r} does not resolve '
                          f'({error})') from None
    if not path.is_relative_to(export_dir.resolve()):
        raise DeployError(f'{export_dir / SPEC_FILE}: the ONNX file {name!r} resolves to {path}, outside the '
                          f'export directory {export_dir}; mmext.deploy reads only files inside it')
    if not path.is_file():
        raise DeployError(f'{export_dir} has {SPEC_FILE} but not its ONNX file {name}; export again')
    return path


def write_spec(export_dir, spec: dict) -> Path:
    path = Path(export_dir) / SPEC_FILE
    path.write_text(json.dumps(spec, indent=2) + '\n')
    return path


def describe_input(spec: dict) -> str:
    """The expected input in words, e.g. ``images: float32 (B, 3, 64, 64), 0..255, bgr``."""
    entry = spec['input']
    dims = ', '.join(str(d) if d is not None else name
                     for d, name in zip(entry['shape'], ('B', 'C', 'H', 'W')))
    return f'{entry["name"]}: {entry["dtype"]} ({dims}), 0..255, {entry["channel_order"]} channel order'


def check_batch(spec: dict, batch: np.ndarray) -> None:
    """Raise :class:`DeployError` naming the expected input unless ``batch`` fits it.

    Args:
        batch: (B, 3, H, W) float32 array.
    """
    expected = spec['input']['shape']
    problem: Optional[str] = None
    if not isinstance(batch, np.ndarray):
        problem = f'got a {type(batch).__name__}, not a numpy array'
    elif batch.dtype != np.dtype(spec['input']['dtype']):
        problem = f'got dtype {batch.dtype}'
    elif batch.ndim != 4:
        problem = f'got shape {tuple(batch.shape)} ({batch.ndim} dims)'
    elif batch.shape[1] != expected[1]:
        problem = f'got {batch.shape[1]} channels (shape {tuple(batch.shape)})'
    elif any(e is not None and e != d for e, d in zip(expected, batch.shape)):
        problem = f'got shape {tuple(batch.shape)}; this export is static, export again with --dynamic ' \
                  'or --shape for other sizes'
    elif expected[2] is None and min(batch.shape[2:]) < (spec['input'].get('min_size') or 0):
        problem = f'got shape {tuple(batch.shape)}; this dynamic export takes H, W >= ' \
                  f'{spec["input"]["min_size"]}'
    if problem is not None:
        raise DeployError(f'expected {describe_input(spec)}; {problem}')
