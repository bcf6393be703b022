"""Where OpenVINO's CPU time goes, fp32 against bf16: per-layer profiling counters of an export directory.

    .venv/bin/python tools/benchmarks/profile_openvino.py DIR [--repeats 5] [--top 12]
        [--out work_dirs/benchmarks/deploy/profile_openvino.md]

Compiles ``DIR``'s ONNX file twice (``INFERENCE_PRECISION_HINT`` f32 and bf16, ``PERF_COUNT`` on, the
LATENCY hint of ``mmext.deploy``), runs one scene image ``--repeats`` times through each in turns, and
sums OpenVINO's per-layer ``real_time`` by layer type: time in each precision, the bf16 speed-up of
each type, the share of the total, and the kernels that ran (``exec_type``: e.g. ``brgconv_avx512_bf16``
or a fp32 ``jit_avx512`` that bf16 did not reach). Writes markdown.
"""
import argparse
import collections
import os
import os.path as osp

import numpy as np

from mmext.deploy.spec import read_spec
from mmext.testing import scene_image


def compile_profiled(onnx_path: str, precision: str):
    import openvino as ov
    return ov.Core().compile_model(onnx_path, 'CPU', {
        'INFERENCE_PRECISION_HINT': {'fp32': 'f32', 'bf16': 'bf16'}[precision],
        'PERFORMANCE_HINT': 'LATENCY', 'PERF_COUNT': True})


def layer_times(request) -> dict:
    """``{layer type: (milliseconds, set of exec types)}`` of the last inference of ``request``."""
    totals = collections.defaultdict(lambda: [0.0, set()])
    for info in request.get_profiling_info():
        milliseconds = info.real_time.total_seconds() * 1000
        if milliseconds <= 0:
            continue
        totals[info.node_type][0] += milliseconds
        totals[info.node_type][1].add(info.exec_type)
    return totals


def profile(export_dir: str, repeats: int) -> dict:
    """``{precision: {layer type: [total ms over repeats, exec types]}}`` and wall times."""
    spec = read_spec(export_dir)
    height, width = spec['input']['export_size']  # the static size, or a dynamic export's example
    batch = scene_image((height, width)).astype(np.float32).transpose(2, 0, 1)[None].copy()
    onnx_path = osp.join(export_dir, spec['onnx'])
    requests = {p: compile_profiled(onnx_path, p).create_infer_request() for p in ('fp32', 'bf16')}
    results = {p: collections.defaultdict(lambda: [0.0, set()]) for p in requests}
    for request in requests.values():  # warm-up
        request.infer({0: batch})
    for _ in range(repeats):
        for precision, request in requests.items():
            request.infer({0: batch})
            for layer, (milliseconds, kernels) in layer_times(request).items():
                results[precision][layer][0] += milliseconds / repeats
                results[precision][layer][1] |= kernels
    return results


def markdown(results: dict, top: int, title: str) -> str:
    fp32, bf16 = results['fp32'], results['bf16']
    total32, total16 = sum(v[0] for v in fp32.values()), sum(v[0] for v in bf16.values())
    layers = sorted(set(fp32) | set(bf16), key=lambda k: -max(fp32.get(k, [0])[0], bf16.get(k, [0])[0]))
    lines = [f'OpenVINO CPU per-layer time, {title}: fp32 {total32:.0f} ms, bf16 {total16:.0f} ms '
             f'(sum of layers, {total32 / total16:.2f}x)', '',
             '| layer type | fp32 ms | bf16 ms | bf16 speed-up | share of bf16 | bf16 kernels |',
             '|---|---|---|---|---|---|']
    for layer in layers[:top]:
        t32, t16 = fp32.get(layer, [0.0, set()]), bf16.get(layer, [0.0, set()])
        speedup = f'{t32[0] / t16[0]:.2f}x' if t16[0] else 'n/a'
        lines.append(f'| {layer} | {t32[0]:.1f} | {t16[0]:.1f} | {speedup} | {100 * t16[0] / total16:.1f}% | '
                     f'{", ".join(sorted(t16[1]))} |')
    rest32 = sum(fp32.get(k, [0])[0] for k in layers[top:])
    rest16 = sum(bf16.get(k, [0])[0] for k in layers[top:])
    lines.append(f'| (other {max(len(layers) - top, 0)} types) | {rest32:.1f} | {rest16:.1f} | | '
                 f'{100 * rest16 / total16:.1f}% | |')
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('export_dir')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--top', type=int, default=12)
    parser.add_argument('--out', default='work_dirs/benchmarks/deploy/profile_openvino.md')
    args = parser.parse_args()
    spec = read_spec(args.export_dir)
    height, width = spec['input']['export_size']
    title = f'{osp.basename(spec["config"])} at {height}x{width}'
    text = markdown(profile(args.export_dir, args.repeats), args.top, title)
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'a') as f:
        f.write(text + '\n')
    print(text)


if __name__ == '__main__':
    main()
