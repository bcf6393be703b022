"""Quantize an fp32 export to int8 (post-training, static): OUT/end2end.onnx and OUT/deploy.json, run by
tools/deploy/test.py and infer.py like any export."""
import argparse
import sys
from pathlib import Path

from mmengine.config import DictAction

import mmext  # noqa: F401  (registers the installed hosts' datasets)
from mmext.deploy import DeployError, read_spec
from mmext.deploy.quantize import quantize_export
from mmext.engine import load_analysis_config


def parse_args():
    parser = argparse.ArgumentParser(description='Quantize an export to int8')
    parser.add_argument('export_dir', help='an fp32 export of tools/deploy/export.py')
    parser.add_argument('--out', required=True, help='the int8 export directory')
    parser.add_argument('--config', help="the export's config (default: the one deploy.json names)")
    parser.add_argument('--calib-images', type=int, default=32,
                        help="calibration images, from the config's training split (default 32)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    config = args.config or read_spec(args.export_dir)['config']
    cfg = load_analysis_config(config, args.cfg_options)
    spec = quantize_export(args.export_dir, args.out, cfg, args.calib_images)
    calibration = spec['calibration']
    print(f'int8 export in {args.out}: calibrated on {calibration["count"]} images of the '
          f'{calibration["split"]} split; {calibration["float_nodes"]} nodes kept in floating point')


if __name__ == '__main__':
    try:
        main()
    except DeployError as error:
        sys.exit(f'{Path(__file__).name}: {error}')
