"""Batch-1 latency of a model in PyTorch eager and deployed (ONNX Runtime and OpenVINO: fp32, int8, and
OpenVINO bf16 where the CPU has bf16 units), interleaved in one process, with the speed-up over eager and
the agreement of the predictions.

    .venv/bin/python tools/benchmarks/benchmark_deploy.py [--configs CONFIG ...] [--checkpoints CKPT ...]
        [--sizes HxW ...] [--repeats 5] [--calib-images 4 | 0] [--out-dir work_dirs/benchmarks/deploy]

For each config and size the model (random weights from seed 0, or ``--checkpoints``) is exported at that
static size; then one image goes through each path in turns: PyTorch eager is the Runner's test path
(``model.test_step`` on the uint8 image: data preprocessor, ``predict``, as mmseg's / mmdet's
``inference_model`` / ``inference_detector`` run it after their pipelines), the deployed ones take the
same image as float32. The int8 export is the fp32 one quantized by ``mmext.deploy.quantize`` on
``--calib-images`` images of the config's training split (0: no int8 paths). Sizes default to the
config's test size and 512x1024 (segmentation) or 800x1333 (detection). Agreement with eager:
segmentation, the share of pixels of the same class; detection, the share of eager's boxes of score
>= 0.3 that the path also keeps with the same label at IoU >= 0.9.
Writes ``benchmark_deploy.json``, ``.md`` and ``.png`` (speed-ups over eager).
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile

import numpy as np
import torch
from mmengine.config import Config

import mmext  # noqa: F401
from mmext.analysis import build_model, markdown_table, quiet_logs, ratio, time_interleaved, write_report
from mmext.deploy import DeployedModel, export_model
from mmext.deploy.export import task_of, test_input_size
from mmext.deploy.quantize import quantize_export
from mmext.engine.optim import cpu_bf16_flags
from mmext.testing import scene_image

CONFIGS = ('configs/ocr_r50.py', 'configs/pointrend_r50.py')
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) with bf16 instructions; OpenVINO's oneDNN honours the cap, and
# under a lower one it has no bf16 kernels for some layers (compiling fails), so no bf16 path is timed.
BF16_ISAS = ('AVX512_CORE_BF16', 'AVX10_1_512', 'AVX512_CORE_AMX', 'AVX512_CORE_AMX_FP16', 'AVX10_1_512_AMX',
             'AVX10_1_512_AMX_FP16', 'DEFAULT', '')


def bf16_path() -> bool:
    """Whether OpenVINO bf16 can run here: a CPU with bf16 units, oneDNN not capped below them."""
    return bool(cpu_bf16_flags()) and os.environ.get('ONEDNN_MAX_CPU_ISA', '').upper() in BF16_ISAS
LARGE_SIZE = dict(segmentation=(512, 1024), detection=(800, 1333))
DETECTION_AGREEMENT_SCORE, DETECTION_AGREEMENT_IOU = 0.3, 0.9


def eager_predictor(model, image, task):
    """The Runner's test step on one (H, W, 3) uint8 BGR image -> (H, W) class ids, or detections
    (boxes (N, 4), scores (N,), labels (N,))."""
    if task == 'segmentation':
        from mmseg.structures import SegDataSample as Sample
    else:
        from mmdet.structures import DetDataSample as Sample
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    height, width = image.shape[:2]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                scale_factor=(1.0, 1.0))
    data = dict(inputs=[tensor], data_samples=[Sample(metainfo=meta)])

    def predict():
        with torch.no_grad():
            sample = model.test_step(data)[0]
        if task == 'segmentation':
            return sample.pred_sem_seg.data[0].numpy()
        instances = sample.pred_instances
        return instances.bboxes.numpy(), instances.scores.numpy(), instances.labels.numpy()
    return predict


def deployed_predictor(deployed, image, task):
    batch = image.astype(np.float32).transpose(2, 0, 1)[None].copy()

    def predict():
        outputs = deployed.run(batch)
        if task == 'segmentation':
            return outputs['logits'][0].argmax(0)
        kept = outputs['labels'][0] >= 0
        return outputs['boxes'][0][kept], outputs['scores'][0][kept], outputs['labels'][0][kept]
    return predict


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) x1y1x2y2 boxes -> (N, M) IoU."""
    top_left = np.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / np.maximum(area(boxes)[:, None] + area(others)[None] - inter, 1e-12)


def agreement(prediction, reference, task) -> float:
    """Share of ``reference`` (eager) that ``prediction`` reproduces (module docstring); NaN for a
    detector that keeps no box of score >= 0.3."""
    if task == 'segmentation':
        return float((prediction == reference).mean())
    ref_boxes, ref_scores, ref_labels = reference
    boxes, _, labels = prediction
    confident = ref_scores >= DETECTION_AGREEMENT_SCORE
    if not confident.any():
        return float('nan')
    iou = box_iou(ref_boxes[confident], boxes)
    iou[ref_labels[confident][:, None] != labels[None, :]] = 0
    return float((iou.max(1, initial=0) >= DETECTION_AGREEMENT_IOU).mean())


def bench_one(path, cfg, checkpoint, size, repeats, calib_images):
    task = task_of(cfg)
    model = build_model(cfg, checkpoint=checkpoint, seed=0).eval()
    image = scene_image(size)  # the embedded dataset's 128 px scenes, tiled
    predictors = {'pytorch eager fp32': eager_predictor(model, image, task)}
    with tempfile.TemporaryDirectory() as export_dir:
        export_model(model, cfg, export_dir, config_path=path, checkpoint=checkpoint, shape=size)
        paths = [('onnxruntime fp32', export_dir, 'onnxruntime', 'fp32'),
                 ('openvino fp32', export_dir, 'openvino', 'fp32')]
        if bf16_path():
            paths.append(('openvino bf16', export_dir, 'openvino', 'bf16'))
        if calib_images:
            int8_dir = osp.join(export_dir, 'int8')
            quantize_export(export_dir, int8_dir, cfg, calib_images)
            paths += [('onnxruntime int8', int8_dir, 'onnxruntime', 'fp32'),
                      ('openvino int8', int8_dir, 'openvino', 'fp32')]
        for name, directory, backend, precision in paths:
            predictors[name] = deployed_predictor(DeployedModel(directory, backend, precision), image, task)
        times = time_interleaved({name: (lambda _, fn=fn: fn()) for name, fn in predictors.items()},
                                 repeats=repeats, warmup=1)
        labels = {name: fn() for name, fn in predictors.items()}
    eager = statistics.median(times['pytorch eager fp32'])
    rows = []
    for name, samples in times.items():
        median = statistics.median(samples)
        rows.append(dict(path=name, median_seconds=median, images_per_second=1 / median,
                         speedup_over_eager=ratio(eager, median),
                         agreement_with_eager=agreement(labels[name], labels['pytorch eager fp32'], task),
                         samples=samples))
    return dict(config=path, checkpoint=checkpoint, task=task, size=list(size), rows=rows)


def markdown(results, summary):
    lines = [f'Batch-1 latency, median of interleaved runs; {summary}', '']
    lines += markdown_table(
        ['config', 'size', 'path', 'latency (ms)', 'images/s', 'speed-up over eager', 'agreement'],
        [[osp.basename(result['config']), f'{result["size"][0]}x{result["size"][1]}', row['path'],
          f'{1000 * row["median_seconds"]:.0f}', f'{row["images_per_second"]:.2f}',
          f'{row["speedup_over_eager"]:.2f}x', percent(row['agreement_with_eager'])]
         for result in results for row in result['rows']])
    relative = relative_speedups(results)
    if relative:
        lines += ['', 'Speed-up over eager relative to the first config of the same task and size:', '']
        lines += markdown_table(['config', 'size', 'path', 'relative speed-up'],
                                [[osp.basename(config), size, path, f'{value:.3f}']
                                 for (config, size, path), value in relative.items()])
    return '\n'.join(lines) + '\n'


def percent(value: float) -> str:
    return 'n/a' if np.isnan(value) else f'{100 * value:.2f}%'


def relative_speedups(results) -> dict:
    """``{(config, 'HxW', path): speed-up / the first config's}`` for the later configs of a task and
    size, e.g. DLDE's deployed speed-up over its eager model against RetinaNet's over its own."""
    first, relative = {}, {}
    for result in results:
        key = result['task'], tuple(result['size'])
        size = '{}x{}'.format(*result['size'])
        if key not in first:
            first[key] = {row['path']: row['speedup_over_eager'] for row in result['rows']}
            continue
        for row in result['rows']:
            if row['path'] in first[key] and row['path'] != 'pytorch eager fp32':
                relative[result['config'], size, row['path']] = ratio(row['speedup_over_eager'],
                                                                      first[key][row['path']])
    return relative


def bar_chart(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = [f'{osp.splitext(osp.basename(r["config"]))[0]}\n{r["size"][0]}x{r["size"][1]}' for r in results]
    paths = [row['path'] for row in results[0]['rows']]
    fig, ax = plt.subplots(figsize=(1.8 * len(groups) + 2, 3.5))
    width = 0.8 / len(paths)
    for i, name in enumerate(paths):
        values = [next(row['speedup_over_eager'] for row in r['rows'] if row['path'] == name)
                  for r in results]
        ax.bar(np.arange(len(groups)) + i * width, values, width, label=name)
    ax.axhline(1.0, color='k', linewidth=0.8)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups)
    ax.set_ylabel('speed-up over PyTorch eager')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS))
    parser.add_argument('--checkpoints', nargs='+',
                        help="one per config, 'none' for random weights (default: random weights)")
    parser.add_argument('--sizes', nargs='+',
                        help='HxW sizes (default: the config\'s test size and 512x1024, detection 800x1333)')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--calib-images', type=int, default=4,
                        help="int8 calibration images of the config's training split; 0: no int8 paths")
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/deploy')
    args = parser.parse_args()
    checkpoints = [None if c.lower() == 'none' else c
                   for c in args.checkpoints or ['none'] * len(args.configs)]
    if len(checkpoints) != len(args.configs):
        parser.error('--checkpoints needs one checkpoint per config')
    quiet_logs()
    isa = os.environ.get('ONEDNN_MAX_CPU_ISA')
    summary = (f'{torch.get_num_threads()} threads, bf16 flags {cpu_bf16_flags() or "none"}'
               f'{", ONEDNN_MAX_CPU_ISA=" + isa if isa else ""}'
               f'{"" if bf16_path() else " (so no OpenVINO bf16 path)"}, torch {torch.__version__}')
    results = []
    for path, checkpoint in zip(args.configs, checkpoints):
        cfg = Config.fromfile(path)
        sizes = ([tuple(int(v) for v in size.split('x')) for size in args.sizes] if args.sizes else
                 [test_input_size(cfg), LARGE_SIZE[task_of(cfg)]])
        for size in sizes:
            results.append(bench_one(path, cfg, checkpoint, size, args.repeats, args.calib_images))
            print(markdown(results[-1:], summary).split('\n', 4)[-1], flush=True)
    write_report(args.out_dir, 'benchmark_deploy', dict(results=results), markdown(results, summary),
                 chart=lambda path: bar_chart(results, path))
    print(markdown(results, summary))


if __name__ == '__main__':
    main()
