"""Time IoU encoding + intersect decoding of box-shaped proto shapes: the direct convolution (the
reference's method, here ``proto_shape=ones``) against mmext's integral-image path (``kernel_size``).

    .venv/bin/python tools/benchmarks/iou_encoding_speed.py [--batch 16] [--size 512] [--kernel 25]

After one untimed round, the two run interleaved ``--repeats`` times; it prints the median of each,
their ratio and the largest difference.
"""
import argparse
import statistics

import torch

from mmext.analysis import time_interleaved
from mmext.ops import intersect_decode, iou_encode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--kernel', type=int, default=25)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    masks = (torch.rand(args.batch, 1, args.size, args.size) > 0.5).float()
    ones = torch.ones(args.kernel, args.kernel)

    def direct():
        return intersect_decode(iou_encode(masks, proto_shape=ones), proto_shape=ones)

    def box_path():
        return intersect_decode(iou_encode(masks, kernel_size=args.kernel), kernel_size=args.kernel)

    with torch.no_grad():
        times = time_interleaved({'direct': lambda _: direct(), 'box': lambda _: box_path()}, args.repeats)
        difference = (box_path() - direct()).abs().max().item()
    direct_s, box_s = statistics.median(times['direct']), statistics.median(times['box'])
    print(f'masks {tuple(masks.shape)}, {args.kernel}x{args.kernel} box, encode + decode, '
          f'{torch.get_num_threads()} threads')
    print(f'direct convolution: {direct_s * 1000:8.1f} ms')
    print(f'mmext box path:     {box_s * 1000:8.1f} ms')
    print(f'speed-up: {direct_s / box_s:.1f}x, max abs difference {difference:.2e}')


if __name__ == '__main__':
    main()
