"""Batch-1 latency of a model in PyTorch eager and deployed (ONNX Runtime fp32, OpenVINO fp32 and bf16),
interleaved in one process, with the speed-up over eager and the agreement of the predictions.

    .venv/bin/python tools/benchmarks/benchmark_deploy.py [--configs CONFIG ...] [--checkpoints CKPT ...]
        [--sizes 128x128 512x1024] [--repeats 5] [--out-dir work_dirs/benchmarks/deploy]

For each config and size the model (random weights from seed 0, or ``--checkpoints``) is exported at that
static size; then one image goes through each path in turns: PyTorch eager is the Runner's test path
(``model.test_step`` on the uint8 image: data preprocessor, ``predict``), the deployed ones take the same
image as float32. Agreement is the share of pixels whose predicted class equals eager's. Writes
``benchmark_deploy.json``, ``.md`` and ``.png`` (speed-ups over eager).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import tempfile

import numpy as np
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample

import mmext  # noqa: F401
from mmext.analysis import build_model, environment, quiet_logs, ratio, time_interleaved
from mmext.deploy import DeployedModel, export_model
from mmext.engine.optim import cpu_bf16_flags

CONFIGS = ('configs/ocr_r50.py', 'configs/pointrend_r50.py')


def eager_predictor(model, image):
    """The Runner's test step on one (H, W, 3) uint8 BGR image -> (H, W) class ids."""
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    height, width = image.shape[:2]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                scale_factor=(1.0, 1.0))
    data = dict(inputs=[tensor], data_samples=[SegDataSample(metainfo=meta)])

    def predict():
        with torch.no_grad():
            return model.test_step(data)[0].pred_sem_seg.data[0].numpy()
    return predict


def deployed_predictor(deployed, image):
    batch = image.astype(np.float32).transpose(2, 0, 1)[None].copy()

    def predict():
        return deployed.run(batch)['logits'][0].argmax(0)
    return predict


def bench_one(path, checkpoint, size, repeats):
    cfg = Config.fromfile(path)
    model = build_model(cfg, checkpoint=checkpoint, seed=0).eval()
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    predictors = {'pytorch eager fp32': eager_predictor(model, image)}
    with tempfile.TemporaryDirectory() as export_dir:
        export_model(model, cfg, export_dir, config_path=path, checkpoint=checkpoint, shape=size)
        backends = [('onnxruntime fp32', 'onnxruntime', 'fp32'), ('openvino fp32', 'openvino', 'fp32')]
        if cpu_bf16_flags():
            backends.append(('openvino bf16', 'openvino', 'bf16'))
        for name, backend, precision in backends:
            predictors[name] = deployed_predictor(DeployedModel(export_dir, backend, precision), image)
        times = time_interleaved({name: (lambda _, fn=fn: fn()) for name, fn in predictors.items()},
                                 repeats=repeats, warmup=1)
        labels = {name: fn() for name, fn in predictors.items()}
    eager = statistics.median(times['pytorch eager fp32'])
    rows = []
    for name, samples in times.items():
        median = statistics.median(samples)
        rows.append(dict(path=name, median_seconds=median, images_per_second=1 / median,
                         speedup_over_eager=ratio(eager, median),
                         agreement_with_eager=float((labels[name] == labels['pytorch eager fp32']).mean()),
                         samples=samples))
    return dict(config=path, checkpoint=checkpoint, size=list(size), rows=rows)


def markdown(results, summary):
    lines = [f'Batch-1 latency, median of interleaved runs; {summary}', '',
             '| config | size | path | latency (ms) | images/s | speed-up over eager | agreement |',
             '|---|---|---|---|---|---|---|']
    for result in results:
        for row in result['rows']:
            lines.append(f'| {osp.basename(result["config"])} | {result["size"][0]}x{result["size"][1]} | '
                         f'{row["path"]} | {1000 * row["median_seconds"]:.0f} | {row["images_per_second"]:.2f} '
                         f'| {row["speedup_over_eager"]:.2f}x | {100 * row["agreement_with_eager"]:.2f}% |')
    return '\n'.join(lines) + '\n'


def bar_chart(results, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = [f'{osp.splitext(osp.basename(r["config"]))[0]}\n{r["size"][0]}x{r["size"][1]}' for r in results]
    paths = [row['path'] for row in results[0]['rows']]
    fig, ax = plt.subplots(figsize=(1.8 * len(groups) + 2, 3.5))
    width = 0.8 / len(paths)
    for i, name in enumerate(paths):
        values = [next(row['speedup_over_eager'] for row in r['rows'] if row['path'] == name) for r in results]
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
    parser.add_argument('--sizes', nargs='+', default=['128x128', '512x1024'])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/deploy')
    args = parser.parse_args()
    checkpoints = [None if c.lower() == 'none' else c for c in args.checkpoints or ['none'] * len(args.configs)]
    if len(checkpoints) != len(args.configs):
        parser.error('--checkpoints needs one checkpoint per config')
    sizes = [tuple(int(v) for v in size.split('x')) for size in args.sizes]
    quiet_logs()
    summary = (f'{torch.get_num_threads()} threads, bf16 flags {cpu_bf16_flags() or "none"}, '
               f'torch {torch.__version__}')
    results = []
    for path, checkpoint in zip(args.configs, checkpoints):
        for size in sizes:
            results.append(bench_one(path, checkpoint, size, args.repeats))
            print(markdown(results[-1:], summary).split('\n', 4)[-1], flush=True)
    os.makedirs(args.out_dir, exist_ok=True)
    stem = osp.join(args.out_dir, 'benchmark_deploy')
    with open(f'{stem}.json', 'w') as f:
        json.dump(dict(environment=environment(), results=results), f, indent=1)
    with open(f'{stem}.md', 'w') as f:
        f.write(markdown(results, summary))
    bar_chart(results, f'{stem}.png')
    print(markdown(results, summary))


if __name__ == '__main__':
    main()
