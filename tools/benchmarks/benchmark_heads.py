"""Speed, memory and FLOPs of mmext's heads against the host libraries' built-in ones, in one process.

    .venv/bin/python tools/benchmarks/benchmark_heads.py [--methods ocr pointrend dlde] \\
        [--sizes embedded paper] [--repeats 10] [--out-dir work_dirs/benchmarks/heads]

Pairs: mmext ``ObjectContextHead`` vs mmseg ``OCRHead`` (configs/ocr_r50.py), mmext ``PointRendHead``
vs mmseg ``PointHead`` (configs/pointrend_r50.py), mmext ``DLDEHead`` vs mmdet ``RetinaHead``
(configs/dlde_retinanet_r50.py; the built-in side is that config without the DLDE keys, which is
configs/retinanet_r50.py). How each pair's heads are configured, built, fed and called is in
``head_pairs.py``; the tables and the chart are drawn by ``heads_report.py``.

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
:mod:`mmext.analysis.memory`). Sizes: ``embedded`` (the first training batch of the config's data),
``paper`` (OCR and PointRend: Cityscapes 512x1024, batch 2, 19 classes; DLDE: COCO 800x1333 padded
to 800x1344, batch 2, 80 classes) or ``HxW@B``. PointRend inference is also timed at batch 1 on
``--pointrend-sizes`` images with 19 classes. The first measurement is this machine's dense fp32
peak: a ``torch.mm`` matmul and a 3x3 convolution, the larger being the reference of the achieved
GFLOP/s (on AMD CPUs, MKL's sgemm runs at half the speed of oneDNN's AVX-512 convolutions).

Model level, on the embedded data with the configs as they are: both models built from the config
(weights copied as above), ``--model-steps`` timed ``train_step`` calls (data preprocessing,
forward, loss, backward, optimizer step; in the config's precision, or ``--fp32`` / ``--amp`` as
``tools/train.py`` takes them: the embedded recipes train in bf16 where the CPU has bf16 units) on
real training batches, and batch-1 inference
(``mode='predict'`` on preprocessed test images) over ``--model-images`` images.

Every result goes to ``<out-dir>/benchmark_heads.json``, the tables to ``benchmark_heads.md`` and
the ratios to ``benchmark_heads.png``. Ratios are mmext / built-in of a cost (time, bytes): below 1,
mmext is cheaper. CUDA runs the same when available (``--devices auto``); otherwise the outputs say
it was not run. Run it on an otherwise idle machine.
"""
import argparse
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper

from mmext.analysis import (build_model, count_flops, dense_peak_gflops, environment, load_batches,
                            peak_memory_bytes, predict, preprocess, quiet_logs, ratio, summarize,
                            time_interleaved, total_loss)
from mmext.engine import load_analysis_config
from mmext.engine.optim import optim_wrapper_in

# Modules next to this script (its folder is sys.path[0] when it runs).
from head_pairs import BUILTIN, BUILTIN_PAIRS, LABELS, MMEXT, BuiltinHeadPair, DLDEPair, HeadInputs, Size
from heads_report import write_outputs

ROOT = Path(__file__).resolve().parents[2]
KINDS = ('forward', 'train', 'inference')


# -- workloads --------------------------------------------------------------------------------------

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


def head_workloads(pair: BuiltinHeadPair, cfg: Config, label: str, head,
                   inputs: HeadInputs) -> Dict[str, Callable[[], Any]]:
    """The ``forward``, ``train`` and ``inference`` calls of one head (see the module docstring)."""
    return dict(forward=run_as(head, partial(pair.forward, label, head, inputs), False),
                train=run_as(head, partial(loss_and_backward, head, inputs,
                                           partial(pair.loss, cfg, head, inputs)), True),
                inference=run_as(head, partial(pair.predict, cfg, head, inputs), False))


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
        time=ratio(record[MMEXT]['seconds']['median'], record[BUILTIN]['seconds']['median']),
        memory=ratio(record[MMEXT]['peak_bytes'], record[BUILTIN]['peak_bytes']))
    record['max_abs_diff'] = max_abs_diff(outputs[MMEXT], outputs[BUILTIN]) if compare else None
    return record


def bench_heads(cfg: Config, pair: BuiltinHeadPair, size: Size, kinds, args, device: str) -> Dict[str, Any]:
    """Both heads of a pair on ``size`` inputs: one :func:`measure` record per workload kind."""
    cfg = pair.with_num_classes(cfg, size.num_classes)
    cfgs = {label: pair.benchmark_config(cfg, label) for label in LABELS}
    heads = {label: pair.build_head(cfgs[label], device) for label in LABELS}
    weights = pair.share_weights(heads[MMEXT], heads[BUILTIN])
    inputs = pair.make_inputs(cfg, size, device)
    workloads = {label: head_workloads(pair, cfgs[label], label, heads[label], inputs) for label in LABELS}
    record = dict(size=dict(asdict(size), num_classes=pair.num_classes(cfg),
                            features=[list(f.shape) for f in inputs.feats]),
                  heads=dict(pair.heads), weights=weights, workloads={})
    for kind in kinds:
        started = time.perf_counter()
        record['workloads'][kind] = measure({label: workloads[label][kind] for label in LABELS},
                                            args.repeats, args.warmup, device, compare=pair.same_layout)
        print(f'  {size.name:>10s} {kind:9s} ratio {record["workloads"][kind]["ratio"]["time"]:.3f} '
              f'({time.perf_counter() - started:.1f} s)', flush=True)
    return record


def bench_models(cfg: Config, pair: BuiltinHeadPair, args, device: str) -> Dict[str, Any]:
    """Whole models from the config on its embedded data: train steps and batch-1 inference."""
    cfgs = {label: pair.benchmark_config(cfg, label) for label in LABELS}
    for label_cfg in cfgs.values():
        if args.amp or args.fp32:
            precision = 'mixed' if args.amp else 'fp32'
            label_cfg.optim_wrapper = optim_wrapper_in(label_cfg.optim_wrapper, precision)
    models = {label: build_model(c, device) for label, c in cfgs.items()}
    weights = pair.share_weights(models[MMEXT], models[BUILTIN])
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
    record = dict(weights=weights, train_batch=len(train_batches[0]['inputs']), test_images=len(test),
                  train_step={}, inference={})
    for label in LABELS:
        record['train_step'][label] = dict(seconds=summarize(steps[label]), peak_bytes=train_memory[label])
        record['inference'][label] = dict(seconds=summarize(infer[label]),
                                          images_per_s=len(test) / sum(infer[label]))
    for part in ('train_step', 'inference'):
        record[part]['ratio'] = dict(time=ratio(record[part][MMEXT]['seconds']['median'],
                                                record[part][BUILTIN]['seconds']['median']))
    record['train_step']['ratio']['memory'] = ratio(train_memory[MMEXT], train_memory[BUILTIN])
    record['inference']['ratio']['images_per_s'] = ratio(record['inference'][MMEXT]['images_per_s'],
                                                          record['inference'][BUILTIN]['images_per_s'])
    return record


# -- command line -----------------------------------------------------------------------------------

def parse_size(spec: str, pair: BuiltinHeadPair, cfg: Config) -> Size:
    """'embedded' (the config's first training batch), 'paper' (the pair's) or 'HxW@B'."""
    if spec == 'paper':
        return pair.paper
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
    parser.add_argument('--methods', nargs='+', choices=list(BUILTIN_PAIRS), default=list(BUILTIN_PAIRS))
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
    add_precision_arguments(parser)
    parser.add_argument('--model-images', type=int, default=0, help='test images for inference; 0: all')
    parser.add_argument('--matmul-size', type=int, default=2048,
                        help='N of the NxN matmul of the dense peak (the 3x3 conv map is N/32 square)')
    parser.add_argument('--devices', nargs='+', default=['auto'], choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/heads')
    return parser.parse_args(argv)


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fp32`` / ``--amp`` for the model-level train steps, as ``tools/train.py`` takes them."""
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--fp32', action='store_true',
                           help='model train steps in fp32 (default: the config\'s own precision)')
    precision.add_argument('--amp', action='store_true', help='model train steps in mixed precision')


def method_configs(args) -> Dict[str, str]:
    """method -> config path, the defaults overridden by ``--configs METHOD=PATH``."""
    paths = {name: str(ROOT / BUILTIN_PAIRS[name].config) for name in args.methods}
    for item in args.configs:
        name, _, path = item.partition('=')
        if name not in BUILTIN_PAIRS or not path:
            raise ValueError(f'--configs {item!r}: expected METHOD=PATH with METHOD in {list(BUILTIN_PAIRS)}')
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
            pair = BUILTIN_PAIRS[name]
            cfg = load_analysis_config(configs[name], args.cfg_options)
            print(f'[{device}] {name}: {pair.heads[MMEXT]} vs {pair.heads[BUILTIN]}', flush=True)
            out['heads'][name] = [bench_heads(cfg, pair, parse_size(s, pair, cfg), KINDS, args, device)
                                  for s in args.sizes]
            if pair.inference_grows_with_size:
                sizes = [Size(s, *parse_size(s, pair, cfg).shape, 1, pair.paper.num_classes)
                         for s in args.pointrend_sizes]
                out['pointrend_scaling'] = [bench_heads(cfg, pair, size, ('inference',), args, device)
                                            for size in sizes]
            if args.model_steps:
                models = out['models'][name] = bench_models(cfg, pair, args, device)
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
         f'set to random unit vectors as after training, test_cfg {DLDEPair.test_overrides} for both (head '
         'and model level), so that both post-process nms_pre boxes per level whatever the weights.')


def main(argv=None) -> Dict[str, Any]:
    args = parse_args(argv)
    result = run(args)
    for kind, path in write_outputs(result, Path(args.out_dir)).items():
        print(f'{kind}: {path}')
    return result


if __name__ == '__main__':
    main()
