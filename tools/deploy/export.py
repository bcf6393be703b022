"""Export a config's model to DIR/end2end.onnx and DIR/deploy.json (torch's dynamo ONNX exporter)."""
import argparse

from mmengine.config import DictAction

import mmext  # noqa: F401  (registers the installed hosts; build_model installs the checkpoint patches)
from mmext.analysis.models import build_model, quiet_logs
from mmext.deploy import export_model
from mmext.engine import load_analysis_config


def parse_args():
    parser = argparse.ArgumentParser(description='Export a model to ONNX with its preprocessing')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='export directory')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size (default: the config's test size)")
    parser.add_argument('--batch', type=int, default=1, help='static batch size')
    parser.add_argument('--dynamic', action='store_true', help='dynamic batch, height and width')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_analysis_config(args.config, args.cfg_options)
    quiet_logs()
    model = build_model(cfg, checkpoint=args.checkpoint)
    spec = export_model(model, cfg, args.out, config_path=args.config, checkpoint=args.checkpoint,
                        shape=args.shape, batch=args.batch, dynamic=args.dynamic, opset=args.opset)
    print(f'exported {spec["task"]} model to {args.out}/{spec["onnx"]}: input {spec["input"]["shape"]}, '
          f'outputs {list(spec["outputs"])}')


if __name__ == '__main__':
    main()
