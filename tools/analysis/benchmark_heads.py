"""Speed, memory and FLOPs of mmext's heads against the host libraries' built-in ones, in one process.

    .venv/bin/python tools/analysis/benchmark_heads.py [--methods ocr pointrend dlde] \\
        [--sizes embedded paper] [--repeats 10] [--out-dir work_dirs/benchmarks/heads]

Pairs: mmext ``ObjectContextHead`` vs mmseg ``OCRHead`` (configs/ocr_r50.py), mmext ``PointRendHead``
vs mmseg ``PointHead`` (configs/pointrend_r50.py), mmext ``DLDEHead`` vs mmdet ``RetinaHead``
(configs/dlde_retinanet_r50.py; the built-in side is that config without the DLDE keys, which is
configs/retinanet_r50.py).

Head level, per size: both heads get the same random features (shapes from running the config's
backbone, neck and first stage on the 'meta' device), coarse logits and data samples (random
labels / boxes). OCR and PointRend copy the mmext head's weights into the built-in one (strict
``load_state_dict``) and report the largest output difference; DLDE and RetinaHead differ in layout:
both are initialized from the same seed and the parameters of equal name and shape are copied.
Workloads, each in its own interleaved series (mmext, built-in, mmext, ...) after warm-up:

* ``forward``: eval mode, no autograd. OCR: logits at feature size. PointRend: sampling of the fine
  features and coarse logits at ``train_cfg.num_points`` random points per image and the point MLP.
  DLDE / RetinaHead: the class scores and box deltas of every level (DLDE's scores are the cosine
  scores of its embeddings, ``embeddings_to_logits``).
* ``train``: train mode, ``head.loss`` (forward, point/anchor sampling, ``loss_by_feat``), the sum of
  the losses, ``backward`` into the weights and the input features; same RNG seed for both heads.
* ``inference``: eval mode, ``head.predict`` (OCR: logits resized to the image; PointRend: the full
  subdivision; DLDE / RetinaHead: scores, decoding and NMS, with ``score_thr=0``: how many boxes
  pass the config's 0.05 depends on the weights, and with untrained ones it differs arbitrarily
  between the heads (often none pass); at 0 both post-process ``nms_pre`` boxes per level, the
  full load of a confident model. A trained checkpoint: benchmark_inference.py).

Per workload and head: the median and IQR of the latency, the FLOPs (``torch.utils.flop_counter``, 2
per multiply-accumulate) and achieved GFLOP/s, and the peak memory (see
:mod:`mmext.utils.benchmark`). Sizes: ``embedded`` (the first training batch of the config's data),
``paper`` (OCR and PointRend: Cityscapes 512x1024, batch 2, 19 classes; DLDE: COCO 800x1333 padded
to 800x1344, batch 2, 80 classes) or ``HxW@B``. PointRend inference is also timed at batch 1 on
``--pointrend-sizes`` images with 19 classes. The first measurement is this machine's dense fp32
peak: a ``torch.mm`` matmul and a 3x3 convolution, the larger being the reference of the achieved
GFLOP/s (on AMD CPUs, MKL's sgemm runs at half the speed of oneDNN's AVX-512 convolutions).

Model level, on the embedded data with the configs as they are: both models built from the config
(weights copied as above), ``--model-steps`` timed ``train_step`` calls (data preprocessing,
forward, loss, backward, optimizer step) on real training batches, and batch-1 inference
(``mode='predict'`` on preprocessed test images) over ``--model-images`` images.

Every result goes to ``<out-dir>/benchmark_heads.json``, the tables to ``benchmark_heads.md`` and
the ratios to ``benchmark_heads.png``. Ratios are mmext / built-in of a cost (time, bytes): below 1,
mmext is cheaper. CUDA runs the same when available (``--devices auto``); otherwise the outputs say
it was not run. Run it on an otherwise idle machine.
"""
import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from mmext.utils import load_analysis_config
from mmext.utils.benchmark import (dense_peak_gflops, environment, peak_memory_bytes, ratio, summarize,
                                   time_interleaved)
from mmext.utils.flops import count_flops
from mmext.utils.model_bench import (build_model, copy_weights, det_samples, load_batches,
                                     meta_shapes, predict, preprocess, quiet_logs,
                                     random_like_shapes, seg_samples, total_loss)

ROOT = Path(__file__).resolve().parents[2]
LABELS = ('mmext', 'builtin')
KINDS = ('forward', 'train', 'inference')
DLDE_KEYS = ('embedding_size', 'means_update', 'means_lr', 'init_weight', 'init_bias')
DET_TEST_OVERRIDES = dict(score_thr=0.0)  # equal post-processing load for both heads (see above)
MIB = 2**20


@dataclass(frozen=True)
class Size:
    """Input images of a benchmark: (height, width), batch, and the class count (None: the config's)."""
    name: str
    height: int
    width: int
    batch: int
    num_classes: Optional[int] = None

    @property
    def shape(self) -> Tuple[int, int]:
        return self.height, self.width


@dataclass(frozen=True)
class Method:
    """One mmext head and its built-in counterpart."""
    config: str
    host: str  # 'mmseg' or 'mmdet'
    mmext: str
    builtin: str
    paper: Size


CITYSCAPES = Size('paper', 512, 1024, 2, 19)  # mmseg's Cityscapes crop, 2 images per GPU
METHODS = {
    'ocr': Method('configs/ocr_r50.py', 'mmseg', 'ObjectContextHead', 'OCRHead', CITYSCAPES),
    'pointrend': Method('configs/pointrend_r50.py', 'mmseg', 'PointRendHead', 'PointHead', CITYSCAPES),
    # mmdet's COCO 1x: 800x1333 (padded to 800x1344), 2 images per GPU, 80 classes.
    'dlde': Method('configs/dlde_retinanet_r50.py', 'mmdet', 'DLDEHead', 'RetinaHead',
                   Size('paper', 800, 1333, 2, 80)),
}


# -- configs and heads ------------------------------------------------------------------------------

def swap_head(cfg: Config, method: Method, label: str) -> Config:
    """A copy of the method's config with the mmext (``label='mmext'``) or built-in head.

    mmdet: the built-in head is the DLDE head's config without the DLDE keys, and the DLDE hook
    goes (for the embedded config, that is configs/retinanet_r50.py).
    """
    cfg = copy.deepcopy(cfg)
    head_type = getattr(method, label)
    if method.host == 'mmseg':
        cfg.model.decode_head[-1].type = head_type
        return cfg
    keep = {k: v for k, v in cfg.model.bbox_head.items() if label == 'mmext' or k not in DLDE_KEYS}
    cfg.model.bbox_head = ConfigDict(keep, type=head_type)
    if label == 'builtin' and 'custom_hooks' in cfg:
        cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'DLDEMeansHook']
    return cfg


def head_config(cfg: Config, method: Method, label: str) -> Config:
    """:func:`swap_head`, plus ``DET_TEST_OVERRIDES`` for detectors: the config benchmarked."""
    cfg = swap_head(cfg, method, label)
    if method.host == 'mmdet':
        cfg.model.test_cfg.update(DET_TEST_OVERRIDES)
    return cfg


def with_num_classes(cfg: Config, method: Method, num_classes: Optional[int]) -> Config:
    """A copy of the config whose heads predict ``num_classes`` classes (None: unchanged)."""
    if num_classes is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    for head in (cfg.model.decode_head if method.host == 'mmseg' else [cfg.model.bbox_head]):
        head.num_classes = num_classes
    return cfg


def num_classes_of(cfg: Config, method: Method) -> int:
    return (cfg.model.decode_head[-1] if method.host == 'mmseg' else cfg.model.bbox_head).num_classes


def build_head(cfg: Config, method: Method, device: str, seed: int = 0) -> torch.nn.Module:
    """The config's head under test alone, initialized from ``seed``, on ``device``."""
    init_default_scope(method.host)
    if method.host == 'mmseg':
        head_cfg = cfg.model.decode_head[-1]
    else:  # an mmdet detector hands its train/test settings to the head
        head_cfg = dict(cfg.model.bbox_head, train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg)
    torch.manual_seed(seed)
    head = revert_sync_batchnorm(MODELS.build(head_cfg))
    head.init_weights()
    return head.to(device)


def set_trained_like_means(head: torch.nn.Module, seed: int = 0) -> None:
    """Give a DLDE head random unit class means, as after training (zero means score every anchor
    alike); a no-op for other heads."""
    if hasattr(head, 'means'):
        generator = torch.Generator().manual_seed(seed)
        means = torch.randn(head.means.shape, generator=generator)
        head.means.copy_(means / means.norm(dim=1, keepdim=True))


def build_pair(cfg: Config, method: Method, device: str) -> Tuple[Dict[str, torch.nn.Module], str]:
    """Both heads, with the mmext head's weights copied into the built-in one where layouts agree.

    Returns:
        (label -> head, a sentence saying how the weights were shared)
    """
    heads = {label: build_head(head_config(cfg, method, label), method, device) for label in LABELS}
    strict = method.host == 'mmseg'
    shared = copy_weights(heads['mmext'], heads['builtin'], strict=strict)
    set_trained_like_means(heads['mmext'])
    if strict:
        return heads, 'copied (state_dict loads strict)'
    return heads, shared_weights_note(shared)


def shared_weights_note(shared: Dict[str, List[str]]) -> str:
    """One sentence on a non-strict :func:`copy_weights`."""
    return (f'same-seed init; {len(shared["copied"])} tensors of equal name and shape copied; '
            f'built-in only: {", ".join(shared["kept"]) or "none"}; '
            f'mmext only: {", ".join(shared["unused"]) or "none"}')


# -- inputs and workloads ---------------------------------------------------------------------------

@dataclass
class HeadInputs:
    """What both heads of a pair get: (B, C, h, w) features per level, (B, K, h, w) coarse logits
    (cascade heads), data samples with ground truth, their metainfo, and (B, P, 2) point coords
    (PointRend's forward)."""
    feats: List[torch.Tensor]
    coarse: Optional[torch.Tensor]
    samples: list
    metas: List[dict]
    coords: Optional[torch.Tensor]

    def grad_tensors(self) -> List[torch.Tensor]:
        return [t for t in [*self.feats, self.coarse] if t is not None]


def padded_shape(cfg: Config, shape: Tuple[int, int]) -> Tuple[int, int]:
    """The (H, W) the config's data preprocessor makes of an image: at least its ``size``,
    rounded up to its ``pad_size_divisor`` / ``size_divisor``."""
    pre = cfg.model.get('data_preprocessor') or {}
    height, width = shape
    if pre.get('size'):
        height, width = max(height, pre['size'][0]), max(width, pre['size'][1])
    divisor = pre.get('pad_size_divisor') or pre.get('size_divisor') or 1
    return math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor


def make_inputs(cfg: Config, method: Method, size: Size, device: str, seed: int = 0) -> HeadInputs:
    """Random inputs of the shapes that the config's model gives the head for ``size`` images."""
    generator = torch.Generator().manual_seed(seed)
    padded = padded_shape(cfg, size.shape)
    shapes = meta_shapes(cfg, padded, size.batch)
    feats = random_like_shapes(shapes['feats'], device, generator)
    coarse = random_like_shapes([shapes['coarse']], device, generator)[0] if shapes['coarse'] else None
    make_samples = seg_samples if method.host == 'mmseg' else det_samples
    samples = make_samples(size.shape, size.batch, num_classes_of(cfg, method), generator=generator)
    for sample in samples:
        sample.set_metainfo(dict(pad_shape=padded, batch_input_shape=padded))
    coords = None
    if method.builtin == 'PointHead':
        coords = torch.rand(size.batch, cfg.model.train_cfg.num_points, 2, generator=generator).to(device)
    inputs = HeadInputs(feats, coarse, [s.to(device) for s in samples], [s.metainfo for s in samples],
                        coords)
    for tensor in inputs.grad_tensors():  # in a model, the loss back-propagates into the backbone
        tensor.requires_grad_(True)
    return inputs


def point_forward(head, inputs: HeadInputs) -> torch.Tensor:
    """PointRend's forward: fine features and coarse logits sampled at the points, then the MLP."""
    fine = head._transform_inputs(inputs.feats)
    if hasattr(head, 'point_logits'):  # mmext
        return head.point_logits(fine, inputs.coarse, inputs.coords)
    return head.forward(head._get_fine_grained_point_feats(fine, inputs.coords),
                        head._get_coarse_point_feats(inputs.coarse, inputs.coords))


def dense_scores(head, inputs: HeadInputs):
    """A dense head's class scores and box deltas per level; DLDE's embeddings become scores."""
    scores, deltas = head(inputs.feats)
    if hasattr(head, 'embeddings_to_logits'):
        scores = [head.embeddings_to_logits(s) for s in scores]
    return scores, deltas


def loss_and_backward(head, inputs: HeadInputs, loss_fn: Callable[[], dict]) -> torch.Tensor:
    """Zero the gradients (as an optimizer step does), back-propagate the summed losses; return
    the loss value."""
    head.zero_grad(set_to_none=True)
    for tensor in inputs.grad_tensors():
        tensor.grad = None
    loss = total_loss(loss_fn())
    loss.backward()
    return loss.detach()


def run_as(head, fn: Callable[[], Any], training: bool, seed: int = 0) -> Callable[[], Any]:
    """``fn`` run in train or eval mode (autograd on in training only), the RNG seeded first so
    that both heads of a pair and every repeat draw the same points and dropout masks."""
    def call():
        head.train(training)
        torch.manual_seed(seed)
        with torch.set_grad_enabled(training):
            return fn()
    return call


def head_workloads(cfg: Config, method: Method, head, inputs: HeadInputs) -> Dict[str, Callable[[], Any]]:
    """The ``forward``, ``train`` and ``inference`` calls of one head (see the module docstring)."""
    train_cfg, test_cfg = cfg.model.train_cfg, cfg.model.test_cfg
    if method.host == 'mmseg':
        forward = (partial(point_forward, head, inputs) if method.builtin == 'PointHead'
                   else partial(head, inputs.feats, inputs.coarse))
        loss = partial(head.loss, inputs.feats, inputs.coarse, inputs.samples, train_cfg)
        infer = partial(head.predict, inputs.feats, inputs.coarse, inputs.metas, test_cfg)
    else:
        forward = partial(dense_scores, head, inputs)
        loss = partial(head.loss, inputs.feats, inputs.samples)
        infer = partial(head.predict, inputs.feats, inputs.samples)
    return dict(forward=run_as(head, forward, False),
                train=run_as(head, partial(loss_and_backward, head, inputs, loss), True),
                inference=run_as(head, infer, False))


def max_abs_diff(a, b) -> Optional[float]:
    """Largest |a - b| over tensors or (nested) lists/tuples of tensors; None for other outputs."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
        return float((a.detach().float() - b.detach().float()).abs().max()) if a.numel() else 0.0
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) and a:
        diffs = [max_abs_diff(x, y) for x, y in zip(a, b)]
        return None if None in diffs else max(diffs)
    return None


# -- measurement ------------------------------------------------------------------------------------

def measure(fns: Dict[str, Callable[[], Any]], repeats: int, warmup: int, device: str,
            compare: bool) -> Dict[str, Any]:
    """FLOPs (first call), peak memory (second call), then interleaved timing of each function.

    Returns:
        label -> dict(seconds=summary, flops, gflops_per_s, peak_bytes); ``ratio`` (time and
        memory, mmext / built-in); ``max_abs_diff`` of the two outputs (None unless ``compare``).
    """
    outputs, record = {}, {}
    for label, fn in fns.items():
        outputs[label], flops = count_flops(fn)
        record[label] = dict(flops=flops, peak_bytes=peak_memory_bytes(fn, device))
    times = time_interleaved({label: (lambda _, f=fn: f()) for label, fn in fns.items()},
                             repeats, warmup, device)
    for label in fns:
        seconds = summarize(times[label])
        record[label].update(seconds=seconds, gflops_per_s=record[label]['flops'] / seconds['median'] / 1e9)
    record['ratio'] = dict(
        time=ratio(record['mmext']['seconds']['median'], record['builtin']['seconds']['median']),
        memory=ratio(record['mmext']['peak_bytes'], record['builtin']['peak_bytes']))
    record['max_abs_diff'] = max_abs_diff(outputs['mmext'], outputs['builtin']) if compare else None
    return record


def bench_heads(cfg: Config, method: Method, size: Size, kinds, args, device: str) -> Dict[str, Any]:
    """Both heads of a method on ``size`` inputs: one :func:`measure` record per workload kind."""
    cfg = with_num_classes(cfg, method, size.num_classes)
    heads, weights = build_pair(cfg, method, device)
    inputs = make_inputs(cfg, method, size, device)
    workloads = {label: head_workloads(head_config(cfg, method, label), method, heads[label], inputs)
                 for label in LABELS}
    record = dict(size=dict(asdict(size), num_classes=num_classes_of(cfg, method),
                            features=[list(f.shape) for f in inputs.feats]),
                  heads=dict(mmext=method.mmext, builtin=method.builtin), weights=weights, workloads={})
    for kind in kinds:
        started = time.perf_counter()
        record['workloads'][kind] = measure({label: workloads[label][kind] for label in LABELS},
                                            args.repeats, args.warmup, device, compare=method.host == 'mmseg')
        print(f'  {size.name:>10s} {kind:9s} ratio {record["workloads"][kind]["ratio"]["time"]:.3f} '
              f'({time.perf_counter() - started:.1f} s)', flush=True)
    return record


def bench_models(cfg: Config, method: Method, args, device: str) -> Dict[str, Any]:
    """Whole models from the config on its embedded data: train steps and batch-1 inference."""
    cfgs = {label: head_config(cfg, method, label) for label in LABELS}
    models = {label: build_model(c, device) for label, c in cfgs.items()}
    shared = copy_weights(models['mmext'], models['builtin'], strict=method.host == 'mmseg')
    if method.host == 'mmdet':
        set_trained_like_means(models['mmext'].bbox_head)
    optims = {label: build_optim_wrapper(models[label], cfgs[label].optim_wrapper) for label in LABELS}
    train_batches = load_batches(cfg, 'train', args.model_steps + args.model_warmup)

    def train_step(label: str, index: int):
        torch.manual_seed(index)
        models[label].train()
        return models[label].train_step(train_batches[index % len(train_batches)], optims[label])

    steps = time_interleaved({label: partial(train_step, label) for label in LABELS},
                             args.model_steps, args.model_warmup, device)
    train_memory = {label: peak_memory_bytes(partial(train_step, label, 0), device) for label in LABELS}
    test = load_batches(cfg, 'test', args.model_images or None, batch_size=1)
    data = {label: [preprocess(models[label], batch) for batch in test] for label in LABELS}
    def infer_one(label: str, index: int):
        return predict(models[label], data[label][index % len(test)])

    infer = time_interleaved({label: partial(infer_one, label) for label in LABELS}, len(test),
                             args.model_warmup, device)
    record = dict(weights='copied (state_dict loads strict)' if method.host == 'mmseg'
                  else shared_weights_note(shared),
                  train_batch=len(train_batches[0]['inputs']), test_images=len(test), train_step={},
                  inference={})
    for label in LABELS:
        record['train_step'][label] = dict(seconds=summarize(steps[label]), peak_bytes=train_memory[label])
        record['inference'][label] = dict(seconds=summarize(infer[label]),
                                          images_per_s=len(test) / sum(infer[label]))
    for part in ('train_step', 'inference'):
        record[part]['ratio'] = dict(time=ratio(record[part]['mmext']['seconds']['median'],
                                                record[part]['builtin']['seconds']['median']))
    record['train_step']['ratio']['memory'] = ratio(train_memory['mmext'], train_memory['builtin'])
    record['inference']['ratio']['images_per_s'] = ratio(record['inference']['mmext']['images_per_s'],
                                                          record['inference']['builtin']['images_per_s'])
    return record


# -- command line -----------------------------------------------------------------------------------

def parse_size(spec: str, method: Method, cfg: Config) -> Size:
    """'embedded' (the config's first training batch), 'paper' (the method's) or 'HxW@B'."""
    if spec == 'paper':
        return method.paper
    if spec == 'embedded':
        batch = load_batches(cfg, 'train', 1)[0]['inputs']
        return Size('embedded', *batch[0].shape[-2:], len(batch))
    try:
        shape, batch = spec.split('@') if '@' in spec else (spec, '1')
        height, width = map(int, shape.lower().split('x'))
        return Size(spec, height, width, int(batch))
    except ValueError:
        raise ValueError(f"size {spec!r}: expected 'embedded', 'paper' or HxW@B, e.g. 512x1024@2") from None


def resolve_devices(requested: List[str]) -> Tuple[List[str], Dict[str, str]]:
    """Devices to run on and, for each requested one that is not, why."""
    cuda = torch.cuda.is_available()
    wanted = ['cpu', 'cuda'] if requested == ['auto'] else requested
    skipped = {}
    if 'cuda' in wanted and not cuda:
        skipped['cuda'] = 'not run: torch.cuda.is_available() is False on this machine (no GPU)'
    return [d for d in wanted if d not in skipped], skipped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--methods', nargs='+', choices=list(METHODS), default=list(METHODS))
    parser.add_argument('--configs', nargs='+', default=[], metavar='METHOD=PATH',
                        help='another config for a method, e.g. ocr=tests/configs/ocr_tiny.py')
    parser.add_argument('--sizes', nargs='+', default=['embedded', 'paper'],
                        help="head-level sizes: 'embedded', 'paper' or HxW@B")
    parser.add_argument('--pointrend-sizes', nargs='*', default=['256x512', '512x1024', '1024x2048'],
                        help='images (batch 1, 19 classes) for PointRend inference vs input size')
    parser.add_argument('--repeats', type=int, default=10, help='timed runs per head and workload')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed runs after the FLOP-counting and memory runs')
    parser.add_argument('--model-steps', type=int, default=10, help='timed train steps per model; 0: skip')
    parser.add_argument('--model-warmup', type=int, default=2, help='untimed train steps / images')
    parser.add_argument('--model-images', type=int, default=0, help='test images for inference; 0: all')
    parser.add_argument('--matmul-size', type=int, default=2048,
                        help='N of the NxN matmul of the dense peak (the 3x3 conv map is N/32 square)')
    parser.add_argument('--devices', nargs='+', default=['auto'], choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/heads')
    return parser.parse_args(argv)


def method_configs(args) -> Dict[str, str]:
    """method -> config path, the defaults overridden by ``--configs METHOD=PATH``."""
    paths = {name: str(ROOT / METHODS[name].config) for name in args.methods}
    for item in args.configs:
        name, _, path = item.partition('=')
        if name not in METHODS or not path:
            raise ValueError(f'--configs {item!r}: expected METHOD=PATH with METHOD in {list(METHODS)}')
        paths[name] = path
    return paths


def run(args) -> Dict[str, Any]:
    """All measurements on all devices; the JSON-able result."""
    quiet_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices, skipped = resolve_devices(args.devices)
    configs = method_configs(args)
    result = dict(environment=environment(), settings=vars(args).copy(), configs=configs,
                  notes=NOTES, devices=dict(skipped))
    for device in devices:
        out = result['devices'][device] = dict(
            dense_peak=dense_peak_gflops(args.matmul_size, device=device), heads={}, models={},
            pointrend_scaling=[])
        peak = out['dense_peak']
        print(f'[{device}] dense fp32: matmul {peak["matmul"]["gflops_per_s"]:.1f} GFLOP/s, 3x3 conv '
              f'{peak["conv3x3"]["gflops_per_s"]:.1f} GFLOP/s', flush=True)
        for name in args.methods:
            method = METHODS[name]
            cfg = load_analysis_config(configs[name], args.cfg_options)
            print(f'[{device}] {name}: {method.mmext} vs {method.builtin}', flush=True)
            out['heads'][name] = [bench_heads(cfg, method, parse_size(s, method, cfg), KINDS, args, device)
                                  for s in args.sizes]
            if name == 'pointrend':
                out['pointrend_scaling'] = [
                    bench_heads(cfg, method, Size(s, *parse_size(s, method, cfg).shape, 1, 19),
                                ('inference',), args, device) for s in args.pointrend_sizes]
            if args.model_steps:
                models = out['models'][name] = bench_models(cfg, method, args, device)
                print(f'  model      train step ratio {models["train_step"]["ratio"]["time"]:.3f}, '
                      f'inference ratio {models["inference"]["ratio"]["time"]:.3f}', flush=True)
    return result


NOTES = dict(
    ratio='mmext / built-in of a cost (median seconds, peak bytes): below 1, mmext is cheaper.',
    timing='wall time, median and IQR of --repeats runs after warm-up, heads interleaved '
           '(mmext, built-in, mmext, ...); CUDA synchronized around each run.',
    memory='peak of the bytes allocated within a run beyond those allocated before it: CPU from the '
           "PyTorch profiler's allocation trace (tracemalloc does not see PyTorch's allocations; the "
           "RSS mixes them with the allocator's cache), CUDA from torch.cuda.max_memory_allocated.",
    flops='torch.utils.flop_counter: 2 FLOPs per multiply-accumulate of matmuls and convolutions '
          '(forward and backward); element-wise ops, norms, softmax, interpolation and grid_sample '
          'count 0.',
    train='head level: head.loss (forward and loss_by_feat) + sum of the losses + backward into the '
          'weights and input features; model level: model.train_step (preprocessing, forward, loss, '
          'backward, optimizer step).',
    dlde='DLDE vs RetinaHead: different layouts (same-seed init, equal tensors copied), DLDE means '
         f'set to random unit vectors as after training, test_cfg {DET_TEST_OVERRIDES} for both (head '
         'and model level), so that both post-process nms_pre boxes per level whatever the weights.')


# -- reports ----------------------------------------------------------------------------------------

def _ms(summary: dict) -> str:
    return f'{summary["median"] * 1e3:.1f} ({summary["iqr"] * 1e3:.1f})'


def _mib(nbytes: int) -> str:
    return f'{nbytes / MIB:.1f}'


def _diff(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1e}'


def _size(rec: dict) -> str:
    size = rec['size']
    dims = f'{size["height"]}x{size["width"]}@{size["batch"]}'
    return dims if size['name'][0].isdigit() else f'{size["name"]} {dims}'


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    """Markdown table lines."""
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] + \
        ['| ' + ' | '.join(row) + ' |' for row in rows]


def head_table(out: dict) -> List[str]:
    """Latency and memory of every head workload, with the mmext / built-in ratios."""
    rows = [[name, _size(rec), kind, _ms(w['mmext']['seconds']), _ms(w['builtin']['seconds']),
             f'**{w["ratio"]["time"]:.3f}**', _mib(w['mmext']['peak_bytes']),
             _mib(w['builtin']['peak_bytes']), f'**{w["ratio"]["memory"]:.3f}**', _diff(w['max_abs_diff'])]
            for name, records in out['heads'].items() for rec in records
            for kind, w in rec['workloads'].items()]
    return _table(['method', 'size', 'workload', 'mmext ms', 'built-in ms', '**time ratio**', 'mmext MiB',
                   'built-in MiB', '**memory ratio**', 'max abs diff'], rows)


def gflops_table(out: dict) -> List[str]:
    """Achieved GFLOP/s of every head's forward next to the matmul peak."""
    peak = out['dense_peak']['gflops_per_s']
    rows = [[rec['heads'][label], _size(rec), f'{w["flops"] / 1e9:.3f}',
             f'{w["seconds"]["median"] * 1e3:.1f}', f'{w["gflops_per_s"]:.1f}',
             f'{100 * w["gflops_per_s"] / peak:.0f} %']
            for records in out['heads'].values() for rec in records
            for label, w in ((lb, rec['workloads']['forward'][lb]) for lb in LABELS)]
    return _table(['head', 'size', 'GFLOP', 'median ms', 'GFLOP/s', '% of dense peak'], rows)


def scaling_table(out: dict) -> List[str]:
    """PointRend inference latency and memory per input size."""
    rows = [[f'{rec["size"]["height"]}x{rec["size"]["width"]}',
             'x'.join(map(str, rec['size']['features'][0][2:])),
             _ms(w['mmext']['seconds']), _ms(w['builtin']['seconds']), f'**{w["ratio"]["time"]:.3f}**',
             _mib(w['mmext']['peak_bytes']), _mib(w['builtin']['peak_bytes'])]
            for rec in out['pointrend_scaling'] for w in [rec['workloads']['inference']]]
    return _table(['image', 'fine features', 'mmext ms', 'built-in ms', '**time ratio**', 'mmext MiB',
                   'built-in MiB'], rows)


def model_table(out: dict) -> List[str]:
    """Whole-model train step and inference, with the ratios."""
    rows = [[name, _ms(t['mmext']['seconds']), _ms(t['builtin']['seconds']), f'**{t["ratio"]["time"]:.3f}**',
             f'**{t["ratio"]["memory"]:.3f}**', f'{i["mmext"]["images_per_s"]:.2f}',
             f'{i["builtin"]["images_per_s"]:.2f}', f'**{i["ratio"]["time"]:.3f}**']
            for name, rec in out['models'].items() for t, i in [(rec['train_step'], rec['inference'])]]
    return _table(['method', 'train step mmext ms', 'built-in ms', '**time ratio**', '**memory ratio**',
                   'inference mmext img/s', 'built-in img/s', '**latency ratio**'], rows)


def markdown(result: Dict[str, Any]) -> str:
    """The tables of a result, one section per device."""
    env = result['environment']
    lines = ['# mmext heads vs built-in heads', '',
             f'torch {env["torch"]}, {env["torch_threads"]} threads, CPU {env["cpu"]}, GPU {env["gpu"]}. '
             + result['notes']['ratio'], '']
    for device, out in result['devices'].items():
        lines += [f'## {device}', '']
        if isinstance(out, str):
            lines += [out, '']
            continue
        peak = out['dense_peak']
        lines += [f'Dense fp32 peak: torch.mm {peak["matmul"]["size"]}² {peak["matmul"]["gflops_per_s"]:.1f} '
                  f'GFLOP/s, 3x3 conv {"x".join(map(str, peak["conv3x3"]["shape"]))} '
                  f'{peak["conv3x3"]["gflops_per_s"]:.1f} GFLOP/s; "% of peak" is of the larger.', '',
                  '### Heads: median ms (IQR), peak memory MiB', '', *head_table(out), '',
                  '### Achieved GFLOP/s of the head forward', '', *gflops_table(out), '']
        if out['pointrend_scaling']:
            lines += ['### PointRend inference (full subdivision) vs input size, batch 1', '',
                      *scaling_table(out), '']
        if out['models']:
            lines += ['### Whole model on the embedded data', '', *model_table(out), '']
    lines += ['## How it was measured', ''] + [f'- {k}: {v}' for k, v in result['notes'].items()]
    return '\n'.join(lines) + '\n'


def ratio_rows(result: Dict[str, Any]) -> List[Tuple[str, float, float]]:
    """(label, time ratio, memory ratio or NaN) of every measurement, for the chart."""
    rows = []
    for device, out in result['devices'].items():
        if isinstance(out, str):
            continue
        rows += [(f'{device} {name} {rec["size"]["name"]} {kind}', w['ratio']['time'], w['ratio']['memory'])
                 for name, records in out['heads'].items() for rec in records
                 for kind, w in rec['workloads'].items()]
        scaling = [(rec['size']['name'], rec['workloads']['inference']['ratio'])
                   for rec in out['pointrend_scaling']]
        rows += [(f'{device} pointrend inference {size}', r['time'], r['memory']) for size, r in scaling]
        for name, rec in out['models'].items():
            rows += [(f'{device} {name} model train step', rec['train_step']['ratio']['time'],
                      rec['train_step']['ratio']['memory']),
                     (f'{device} {name} model inference', rec['inference']['ratio']['time'], float('nan'))]
    return rows


def bar_chart(result: Dict[str, Any], path: Path) -> None:
    """Horizontal bars of the time and memory ratios, with the parity line at 1 and the goals
    0.9 (train step) and 0.8 (head latency)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = ratio_rows(result)
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(11, 0.3 * len(rows) + 1.5))
    for ax, column, title in ((axes[0], 1, 'time'), (axes[1], 2, 'peak memory')):
        values = [row[column] for row in rows]
        bars = ax.barh(range(len(rows)), values,
                       color=['tab:green' if v <= 1 else 'tab:red' for v in values])
        ax.bar_label(bars, fmt='%.2f', fontsize=7, padding=2)
        for x, style in ((1.0, '-'), (0.9, ':'), (0.8, '--')):
            ax.axvline(x, color='black', linestyle=style, linewidth=0.8)
        ax.set_xlabel(f'{title} ratio mmext / built-in')
        ax.set_title(f'{title}: below 1, mmext is cheaper', fontsize=10)
    axes[0].set_yticks(range(len(rows)), [row[0] for row in rows], fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle('mmext heads vs built-in (lines: 1, goals 0.9 and 0.8)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(result: Dict[str, Any], out_dir: Path) -> Dict[str, Path]:
    """JSON, markdown and PNG of a result under ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f'benchmark_heads.{ext}' for ext in ('json', 'md', 'png')}
    paths['json'].write_text(json.dumps(result, indent=1, default=str))
    paths['md'].write_text(markdown(result))
    bar_chart(result, paths['png'])
    return paths


def main(argv=None) -> Dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    for kind, path in write_outputs(result, Path(args.out_dir)).items():
        print(f'{kind}: {path}')
    return result


if __name__ == '__main__':
    main()
