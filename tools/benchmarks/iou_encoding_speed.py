"""Time IoU encoding + intersect decoding of box-shaped proto shapes: the direct convolution (the
reference's method, here ``proto_shape=ones``) against mmext's integral-image path (``kernel_size``).

    .venv/bin/python tools/benchmarks/iou_encoding_speed.py [--batch 16] [--size 512] [--kernel 25]

Prints the median of ``--repeats`` runs of each, their ratio and the largest difference.
"""
import argparse
import statistics
import time

import torch

from mmext.ops import intersect_decode, iou_encode


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


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
    with torch.no_grad():
        direct, ref = timed(lambda: intersect_decode(iou_encode(masks, proto_shape=ones), proto_shape=ones),
                            args.repeats)
        fast, out = timed(lambda: intersect_decode(iou_encode(masks, kernel_size=args.kernel),
                                                   kernel_size=args.kernel), args.repeats)
    print(f'masks {tuple(masks.shape)}, {args.kernel}x{args.kernel} box, encode + decode, '
          f'{torch.get_num_threads()} threads')
    print(f'direct convolution: {direct * 1000:8.1f} ms')
    print(f'mmext box path:     {fast * 1000:8.1f} ms')
    print(f'speed-up: {direct / fast:.1f}x, max abs difference {(out - ref).abs().max().item():.2e}')


if __name__ == '__main__':
    main()
