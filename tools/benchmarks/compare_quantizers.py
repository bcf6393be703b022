"""ONNX Runtime's static quantization (what ``tools/deploy/quantize.py`` uses) against NNCF, OpenVINO's
quantizer, on one trained model: latency and agreement with PyTorch eager of each int8 file on each
backend, interleaved in one process, batch 1.

    pip install nncf==3.4.0   # not a dependency of mmext
    .venv/bin/python tools/benchmarks/compare_quantizers.py CONFIG CHECKPOINT [--size 512x1024]
        [--calib-images 8] [--repeats 3] [--out-dir work_dirs/benchmarks/quantizers]

Both quantizers read the same calibration batches (``mmext.deploy.quantize.calibration_batches``) and
leave the same float scopes out (``mmext.deploy.float_scopes``). NNCF quantizes the ONNX model (a QDQ
file, which both backends run) and OpenVINO's model of it (an IR, which OpenVINO runs; the deploy tools
read ONNX only, so it is timed here directly). Agreement as in ``benchmark_deploy.py``.
Writes ``compare_quantizers.json`` and ``.md``.
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
from mmext.deploy.export import task_of
from mmext.deploy.float_scopes import float_nodes
from mmext.deploy.quantize import calibration_batches, calibration_dataset, quantize_export
from mmext.deploy.spec import ONNX_FILE, onnx_file, read_spec, write_spec
from mmext.testing import scene_image

# Modules next to this script (its folder is sys.path[0] when it runs).
from benchmark_deploy import agreement, deployed_predictor, eager_predictor  # noqa: E402


def nncf_quantize(export_dir, out_dir, cfg, count: int) -> str:
    """NNCF's int8 of the fp32 export: a QDQ ONNX export in ``out_dir`` and an OpenVINO IR beside it;
    returns the IR's path."""
    import nncf
    import onnx
    import openvino as ov
    os.makedirs(out_dir, exist_ok=True)
    spec = read_spec(export_dir)
    source = onnx_file(export_dir, spec)
    model = onnx.load(str(source))
    batches = [batch['images'] for batch in calibration_batches(calibration_dataset(cfg), count, spec)]
    ignored = nncf.IgnoredScope(names=float_nodes(model), validate=False)
    name = spec['input']['name']
    quantized = nncf.quantize(model, nncf.Dataset(batches, lambda batch: {name: batch}),
                              subset_size=len(batches), ignored_scope=ignored)
    onnx.save(quantized, osp.join(out_dir, ONNX_FILE))
    write_spec(out_dir, dict(spec, precision='int8', calibration=dict(method='NNCF 3.4.0', count=count)))
    ir_path = osp.join(out_dir, 'model.xml')
    ov.save_model(nncf.quantize(ov.Core().read_model(str(source)), nncf.Dataset(batches),
                                subset_size=len(batches), ignored_scope=ignored), ir_path)
    return ir_path


def ir_predictor(ir_path, image, task):
    """An OpenVINO IR compiled as ``mmext.deploy.backends.OpenVinoSession`` compiles, on one image."""
    import openvino as ov
    compiled = ov.Core().compile_model(ir_path, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32',
                                                        'PERFORMANCE_HINT': 'LATENCY'})
    request = compiled.create_infer_request()
    names = [output.get_any_name() for output in compiled.outputs]
    batch = image.astype(np.float32).transpose(2, 0, 1)[None].copy()

    def predict():
        results = request.infer({0: batch})
        outputs = {name: np.asarray(results[output]) for name, output in zip(names, compiled.outputs)}
        if task == 'segmentation':
            return outputs['logits'][0].argmax(0)
        kept = outputs['labels'][0] >= 0
        return outputs['boxes'][0][kept], outputs['scores'][0][kept], outputs['labels'][0][kept]
    return predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--size', default='512x1024', help='HxW of the static export')
    parser.add_argument('--calib-images', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out-dir', default='work_dirs/benchmarks/quantizers')
    args = parser.parse_args()
    quiet_logs()
    size = tuple(int(v) for v in args.size.split('x'))
    cfg = Config.fromfile(args.config)
    task = task_of(cfg)
    model = build_model(cfg, checkpoint=args.checkpoint, seed=0).eval()
    image = scene_image(size)
    predictors = {'pytorch eager fp32': eager_predictor(model, image, task)}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, onnxruntime_int8, nncf_int8 = (osp.join(tmp, name) for name in ('fp32', 'ort', 'nncf'))
        export_model(model, cfg, fp32, config_path=args.config, checkpoint=args.checkpoint, shape=size)
        quantize_export(fp32, onnxruntime_int8, cfg, args.calib_images)
        ir_path = nncf_quantize(fp32, nncf_int8, cfg, args.calib_images)
        for quantizer, directory in (('onnxruntime', onnxruntime_int8), ('nncf', nncf_int8)):
            for backend in ('onnxruntime', 'openvino'):
                predictors[f'{quantizer} QDQ on {backend}'] = deployed_predictor(
                    DeployedModel(directory, backend), image, task)
        predictors['nncf IR on openvino'] = ir_predictor(ir_path, image, task)
        times = time_interleaved({name: (lambda _, fn=fn: fn()) for name, fn in predictors.items()},
                                 repeats=args.repeats, warmup=1)
        labels = {name: fn() for name, fn in predictors.items()}
    eager = statistics.median(times['pytorch eager fp32'])
    rows = [dict(path=name, median_seconds=statistics.median(samples), samples=samples,
                 speedup_over_eager=ratio(eager, statistics.median(samples)),
                 agreement_with_eager=agreement(labels[name], labels['pytorch eager fp32'], task))
            for name, samples in times.items()]
    summary = (f'Batch-1 latency, median of {args.repeats} interleaved runs; {osp.basename(args.config)} at '
               f'{args.size}, {torch.get_num_threads()} threads, {args.calib_images} calibration images')
    lines = markdown_table(['path', 'latency (ms)', 'speed-up over eager', 'agreement'],
                           [[row['path'], f'{1000 * row["median_seconds"]:.0f}',
                             f'{row["speedup_over_eager"]:.2f}x', f'{100 * row["agreement_with_eager"]:.2f}%']
                            for row in rows])
    table = '\n'.join([summary, ''] + lines) + '\n'
    write_report(args.out_dir, 'compare_quantizers', dict(config=args.config, size=list(size), rows=rows),
                 table)
    print(table)


if __name__ == '__main__':
    main()
