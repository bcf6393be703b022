"""Inference speed of an mmseg or mmdet model on its test set, whatever the number of test images.

    .venv/bin/python tools/benchmarks/benchmark_inference.py CONFIG [CHECKPOINT] [--max-images N] \\
        [--warmup 5] [--passes 1] [--device cpu|cuda] [--cfg-options k=v ...] [--out JSON]

Images go one at a time (batch 1) through the test dataloader, in the main process. Each is
preprocessed (data_preprocessor) outside the timed region; the timed region is the model's
``mode='predict'`` call, synchronized on CUDA, as in mmseg's benchmark.py. Before timing, the first
image is run ``--warmup`` times; then every one of the (up to ``--max-images``) images is timed,
``--passes`` times over. The result: images/s of each pass (images / summed time) and the median and
IQR of the per-image latency, printed and, with ``--out``, written as JSON. Without a checkpoint the
weights are the config's initialization (speed does not depend on them, except for detectors,
whose post-processing depends on how many boxes pass ``score_thr``).

mmseg 1.2.2's ``tools/analysis_tools/benchmark.py`` prints ``nan`` with fewer than 200 test images
(the 50 of the embedded dataset): it reports only at the hard-coded 200th image, so with fewer its
list of results stays empty and ``np.mean([])`` is nan. This tool times the images there are.
"""
import argparse
from typing import Any, Dict, Optional

import mmengine
from mmengine.config import Config, DictAction

from mmext.analysis import (build_model, environment, iter_batches, predict, preprocess, quiet_logs,
                            summarize, timed_call)
from mmext.engine import load_analysis_config


def benchmark_inference(cfg: Config, checkpoint: Optional[str] = None, max_images: Optional[int] = None,
                        warmup: int = 5, passes: int = 1, device: str = 'cpu') -> Dict[str, Any]:
    """Batch-1 inference speed over the config's test images (see the module docstring).

    Returns:
        dict: ``images`` (per pass), ``images_per_s`` (over all passes), ``images_per_s_per_pass``,
        ``latency_seconds`` (a :func:`~mmext.analysis.timing.summarize` of all per-image times),
        and the settings.
    """
    if passes < 1 or warmup < 0:
        raise ValueError(f'benchmark_inference: need passes >= 1 and warmup >= 0, got {passes}, {warmup}')
    model = build_model(cfg, device, checkpoint).eval()
    per_pass = []
    for _ in range(passes):
        times = []
        for index, batch in enumerate(iter_batches(cfg, 'test', max_images, batch_size=1)):
            data = preprocess(model, batch)
            if index == 0 and not per_pass:
                for _ in range(warmup):
                    predict(model, data)
            times.append(timed_call(lambda: predict(model, data), device))
        if not times:
            raise ValueError('benchmark_inference: the test dataloader gave no image')
        per_pass.append(times)
    all_times = [t for times in per_pass for t in times]
    return dict(checkpoint=checkpoint, device=device, images=len(per_pass[0]), warmup=warmup, passes=passes,
                images_per_s=len(all_times) / sum(all_times),
                images_per_s_per_pass=[len(times) / sum(times) for times in per_pass],
                latency_seconds=summarize(all_times), environment=environment())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights to load (default: initialization)')
    parser.add_argument('--max-images', type=int, help='time at most this many test images')
    parser.add_argument('--warmup', type=int, default=5, help='untimed runs of the first image')
    parser.add_argument('--passes', type=int, default=1, help='timed passes over the images')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--out', help='write the result to this JSON file')
    return parser.parse_args(argv)


def main(argv=None) -> Dict[str, Any]:
    args = parse_args(argv)
    quiet_logs()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    cfg = load_analysis_config(args.config, args.cfg_options)
    result = dict(config=args.config, **benchmark_inference(cfg, args.checkpoint, args.max_images,
                                                           args.warmup, args.passes, args.device))
    latency = result['latency_seconds']
    print(f'{args.config}: {result["images"]} images x {result["passes"]} pass(es) after {result["warmup"]} '
          f'warm-up runs on {result["device"]}: {result["images_per_s"]:.2f} images/s; latency median '
          f'{latency["median"] * 1e3:.1f} ms (IQR {latency["iqr"] * 1e3:.1f} ms); per pass: '
          + ', '.join(f'{v:.2f}' for v in result['images_per_s_per_pass']))
    if args.out:
        mmengine.dump(result, args.out, indent=1)
    return result


if __name__ == '__main__':
    main()
