"""FLOPs and parameters of mmseg and mmdet models, in total and per part (backbone, neck, each
decode head of a cascade, bbox head), cascade segmentors (OCRNet, PointRend) and the DLDE detector
included.

    .venv/bin/python tools/get_flops.py CONFIG [CONFIG ...] [--shape H [W]] [--batch 1] \\
        [--cfg-options k=v ...] [--json OUT]

It counts one inference, ``mode='predict'`` (the test-time path, PointRend's subdivision included),
of random images of ``--shape`` (default: the config's ``data_preprocessor.size``, else 512x1024
for mmseg and 800x1333 for mmdet), padded as the config's data preprocessor pads them. FLOPs come
from ``torch.utils.flop_counter`` (:mod:`mmext.analysis.flops`): 2 per multiply-accumulate of matmuls
and convolutions; element-wise ops, norms, softmax, interpolation and ``grid_sample`` count 0.
GMACs (= GFLOPs / 2) is the unit of OpenMMLab's model-zoo tables.

mmseg 1.2.2's ``tools/analysis_tools/get_flops.py`` fails on these models, in three places:
``cfg.model.decode_head.type`` raises AttributeError on a cascade's list of decode heads; it passes
both ``input_shape`` and ``inputs`` to mmengine 0.10.7's ``get_model_complexity_info``, which raises
ValueError for every model; and that counter traces ``mode='tensor'``, which PointRend has no
dense output for (mmseg's PointHead fails with a TypeError, mmext's raises a clear one).
"""
import argparse
from typing import Any, Dict, Optional, Tuple

import mmengine
from mmengine.config import Config, DictAction

from mmext.analysis import (build_model, count_flops, count_params, flops_per_component, model_components,
                            predict, preprocess, quiet_logs)
from mmext.engine import load_analysis_config
from mmext.testing import dummy_batch

DEFAULT_SHAPES = {'mmseg': (512, 1024), 'mmdet': (800, 1333)}


def default_shape(cfg: Config) -> Tuple[int, int]:
    """The config's ``model.data_preprocessor.size``, else the host library's usual test size."""
    size = (cfg.model.get('data_preprocessor') or {}).get('size')
    return tuple(size) if size else DEFAULT_SHAPES[cfg.get('default_scope', 'mmseg')]


def complexity(cfg: Config, shape: Optional[Tuple[int, int]] = None, batch: int = 1) -> Dict[str, Any]:
    """FLOPs and parameters of one ``mode='predict'`` call of the config's model.

    Returns:
        dict: ``model`` (type), ``input_shape`` (B, 3, H, W after padding), ``flops``, ``params``,
        and ``parts``: name -> dict(flops, params) per :func:`model_components` part, plus
        ``'(outside parts)'`` for the work the model does outside them.
    """
    shape = tuple(shape) if shape else default_shape(cfg)
    model = build_model(cfg, 'cpu').eval()
    data = preprocess(model, dummy_batch(cfg, shape, batch))
    parts = model_components(model)
    with flops_per_component(parts) as part_flops:
        _, total = count_flops(lambda: predict(model, data))
    result = dict(model=type(model).__name__, input_shape=list(data['inputs'].shape), flops=total,
                  params=count_params(model),
                  parts={name: dict(flops=part_flops[name], params=count_params(module))
                         for name, module in parts.items()})
    result['parts']['(outside parts)'] = dict(flops=total - sum(part_flops.values()), params=0)
    return result


def format_table(name: str, result: Dict[str, Any]) -> str:
    """A printable table of :func:`complexity`'s result."""
    rows = [*result['parts'].items(), ('total', dict(flops=result['flops'], params=result['params']))]
    width = max(len(part) for part, _ in rows)
    lines = [f'{name}: {result["model"]}, input {"x".join(map(str, result["input_shape"]))}, mode=predict',
             f'  {"part":{width}s} {"GFLOPs":>10s} {"GMACs":>10s} {"params (M)":>11s}']
    lines += [f'  {part:{width}s} {v["flops"] / 1e9:10.3f} {v["flops"] / 2e9:10.3f} {v["params"] / 1e6:11.3f}'
              for part, v in rows]
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--shape', type=int, nargs='+', help='input H [W] (default: see above)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every config')
    parser.add_argument('--json', help='also write the results to this JSON file')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes H or H W')
    return args


def main(argv=None) -> Dict[str, Dict[str, Any]]:
    args = parse_args(argv)
    quiet_logs()
    shape = None if args.shape is None else (args.shape[0], args.shape[-1])
    results = {}
    for path in args.configs:
        results[path] = complexity(load_analysis_config(path, args.cfg_options), shape, args.batch)
        print(format_table(path, results[path]), flush=True)
    print('FLOPs: torch.utils.flop_counter, 2 per multiply-accumulate of matmuls and convolutions; other '
          'ops count 0.')
    if args.json:
        mmengine.dump(results, args.json, indent=1)
    return results


if __name__ == '__main__':
    main()
