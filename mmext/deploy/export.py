"""Export an mmseg / mmdet model built from an mmext config to ONNX with torch's own (dynamo) exporter,
and write ``deploy.json`` beside it."""
import contextlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from .detection import ONNX_TRANSLATIONS
from .graph import DetectorGraph, SegmentorGraph, SymbolicUpsample
from .spec import FORMAT, ONNX_FILE, DeployError, write_spec

TASKS = {'mmseg': 'segmentation', 'mmdet': 'detection'}
# A stride-32 feature map of one pixel would be a special case the exporter guards against.
MIN_SIZE, MAX_SIZE, MAX_BATCH = 64, 4096, 1024


def task_of(cfg: Config) -> str:
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise DeployError(f"default_scope={scope!r}: mmext.deploy exports configs of {tuple(TASKS)}")
    return TASKS[scope]


def test_input_size(cfg: Config) -> Tuple[int, int]:
    """(H, W) the config tests at: the data preprocessor's ``size``, or the scale of a ``Resize`` in the
    test pipeline."""
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size is not None:
        return tuple(size)
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        if step['type'] == 'Resize' and step.get('scale') is not None:
            width, height = step['scale']  # mmcv scales are (w, h)
            return height, width
    raise DeployError('the config gives no test size (data_preprocessor.size or a test Resize scale); '
                      'pass --shape H W')


def build_dataset(cfg: Config, dataset_cfg: dict):
    """``dataset_cfg`` built by the config's host (mmseg's or mmdet's ``DATASETS``, in its scope)."""
    from mmengine.registry import DefaultScope
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import DATASETS
    else:
        from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return DATASETS.build(dataset_cfg)


def dataset_metainfo(cfg: Config) -> dict:
    """The test dataset's ``classes`` and ``palette``, read without loading its data (``lazy_init``)."""
    metainfo = build_dataset(cfg, dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo
    return dict(classes=list(metainfo.get('classes', ())),
                palette=[list(map(int, c)) for c in metainfo.get('palette', ())])


def build_graph(model: nn.Module, task: str) -> nn.Module:
    return (SegmentorGraph if task == 'segmentation' else DetectorGraph)(model).eval()


def untranslated_ops(program: torch.export.ExportedProgram) -> list:
    """``(module path, module type, op)`` of every call in ``program`` that the ONNX exporter's
    registry cannot translate."""
    from torch.onnx._internal.exporter._registration import ONNXRegistry
    registry = ONNXRegistry.from_torchlib()
    found = []
    for node in program.graph.nodes:
        if node.op != 'call_function' or not isinstance(node.target, torch._ops.OpOverload):
            continue
        if registry.get_decomps(node.target) or node.target in ONNX_TRANSLATIONS or \
                node.target.namespace == 'onnx_symbolic':
            continue
        path, module_type = next(reversed(node.meta.get('nn_module_stack', {'': ('', '')}).values()))
        type_name = getattr(module_type, '__name__', str(module_type)).rsplit('.', 1)[-1]
        found.append((path or '(top level)', type_name, str(node.target)))
    return found


@contextlib.contextmanager
def symbolic_upsampling(model: nn.Module):
    """Swap mmseg ``Upsample`` modules with integer factors for :class:`SymbolicUpsample` while
    exporting, and back.

    ``Upsample`` computes its size as ``int(t * scale_factor)``, and ``int()`` of a symbolic size
    makes the exporter specialise H and W to the example's.
    """
    from mmseg.models.utils import Upsample
    swapped = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, Upsample) and not child.size and \
                    isinstance(child.scale_factor, float) and child.scale_factor.is_integer():
                setattr(parent, name,
                        SymbolicUpsample(int(child.scale_factor), child.mode, child.align_corners))
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def min_dynamic_size(graph: nn.Module) -> int:
    """The smallest H and W of a dynamic export: :data:`MIN_SIZE`, or the graph's own
    ``min_size`` where it is larger."""
    return max(MIN_SIZE, getattr(graph, 'min_size', MIN_SIZE))


def export_graph(graph: nn.Module, example: torch.Tensor, onnx_path: Path, dynamic: bool,
                 opset: int, output_names) -> None:
    """``torch.onnx.export(dynamo=True)`` of ``graph(images)``; an op without an ONNX translation is a
    :class:`DeployError` naming its module."""
    dynamic_shapes = None
    if dynamic:
        Dim = torch.export.Dim
        min_size = min_dynamic_size(graph)
        dynamic_shapes = {'images': {0: Dim('batch', min=1, max=MAX_BATCH),
                                     2: Dim('height', min=min_size, max=MAX_SIZE),
                                     3: Dim('width', min=min_size, max=MAX_SIZE)}}
    with torch.no_grad(), symbolic_upsampling(graph):
        program = torch.export.export(graph, (example,), dynamic_shapes=dynamic_shapes, strict=False)
        try:
            onnx_program = torch.onnx.export(program, (example,), dynamo=True, opset_version=opset,
                                             input_names=['images'], output_names=list(output_names),
                                             custom_translation_table=ONNX_TRANSLATIONS,
                                             optimize=True, verbose=False)
        except Exception as error:
            missing = untranslated_ops(program)
            if not missing:
                raise
            where = '; '.join(f'{path} ({kind}): {op}' for path, kind, op in missing)
            raise DeployError(f'no ONNX translation for: {where}') from error
    onnx_program.save(str(onnx_path))  # weights go to external data beside it when over 2 GB


def versions() -> dict:
    """Versions of what made the export: torch, the exporter, mmengine, the installed hosts, mmext."""
    found = dict(torch=torch.__version__, python=platform.python_version())
    for name, distribution in (('onnx', 'onnx'), ('onnxscript', 'onnxscript'), ('mmengine', 'mmengine'),
                               ('mmseg', 'mmsegmentation'), ('mmdet', 'mmdet'), ('mmext', 'mmext')):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(distribution)
    return found


def export_model(model: nn.Module, cfg: Config, out_dir, config_path: str = '',
                 checkpoint: Optional[str] = None, shape: Optional[Tuple[int, int]] = None,
                 batch: int = 1, dynamic: bool = False, opset: int = 18) -> dict:
    """Write ``out_dir/end2end.onnx`` (weights beside it if large) and ``out_dir/deploy.json``.

    Args:
        model: the built model (weights loaded), whose config is ``cfg``.
        shape: (H, W) of the example input, the static size unless ``dynamic``; default the
            config's test size (:func:`test_input_size`).
        batch: static batch size (dynamic: B of the example, at least 3).
        dynamic: make B, H and W dynamic (H, W in [64, 4096], or from a detector's
            ``DetectorGraph.min_size``; a smaller ``shape`` is raised to it).

    Returns:
        the deploy.json contents.
    """
    task = task_of(cfg)
    height, width = shape or test_input_size(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = build_graph(model.eval(), task)
    # Dynamic: B >= 2, or the exporter specialises it to 1; 3, so that batches of 1 and 2 are unseen.
    example_batch = max(batch, 3) if dynamic else batch
    if dynamic:
        height, width = max(height, min_dynamic_size(graph)), max(width, min_dynamic_size(graph))
    # a generator of its own: the caller's global random state is left as it was
    example = torch.rand(example_batch, 3, height, width, generator=torch.Generator().manual_seed(0)) * 255
    export_graph(graph, example, out_dir / ONNX_FILE, dynamic, opset, graph.output_names)
    spec = dict(
        format=FORMAT, task=task, config=str(config_path), checkpoint=checkpoint, onnx=ONNX_FILE,
        input=dict(name='images', layout='NCHW', dtype='float32', range=[0, 255], channel_order='bgr',
                   shape=[None, 3, None, None] if dynamic else [batch, 3, height, width],
                   dynamic=dynamic, export_size=[height, width],
                   min_size=min_dynamic_size(graph) if dynamic else None),
        normalization=dict(mean=graph.mean.flatten().tolist(), std=graph.std.flatten().tolist(),
                           bgr_to_rgb=graph.reverse_channels, in_graph=True),
        outputs=graph.output_spec(), opset=opset, versions=versions(), **dataset_metainfo(cfg))
    spec.update(graph.postprocess_spec())
    write_spec(out_dir, spec)
    return spec
