"""Show what a Net2Vec concept probe does on test images: a PNG with one row per image of the image,
the true concept mask, its IoU-encoded target, the raw probe output and the decoded mask.

    .venv/bin/python tools/analysis/visualize_net2vec.py configs/net2vec_r50.py \\
        work_dirs/net2vec_r50/iter_640.pth --indices 0 1 2 --out work_dirs/net2vec_r50/net2vec.png

The IoU target has its own colour scale (its values are small: the union counts the whole concept
area of the image), the raw output (the probe's sigmoid, upsampled to the input) spans [0, 1]; the
decoded mask is the intersect decoding of the raw output thresholded at the head's
``threshold``, the model's prediction. Inference is on the whole (padded) image.
"""
import argparse

import matplotlib
import torch
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmseg.apis import init_model
from mmseg.models.utils import resize
from mmseg.registry import DATASETS

from mmext.engine import load_analysis_config
from mmext.seg.heads import Net2VecHead
from mmext.seg.heads.net2vec_head import encoded_concept_targets

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--indices', type=int, nargs='+', default=[0, 1, 2], help='test image indices')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def probe_maps(model, data: dict) -> dict:
    """The five (H, W) panels of one packed test sample (one concept: channel 0)."""
    head = model.decode_head
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    sample = batch['data_samples'][0]
    labels = sample.gt_sem_seg.data
    with torch.no_grad():
        logits = head.forward(model.extract_feat(batch['inputs']))
        raw = resize(logits, size=labels.shape[1:], mode='bilinear',
                     align_corners=head.align_corners).sigmoid()
        decoded = head.predict_by_feat(logits, [sample.metainfo]).sigmoid()
    target, _ = encoded_concept_targets(labels, head.out_channels, head.ignore_index, head.encoding)
    height, width = data['inputs'].shape[1:]
    concept = 1 if head.out_channels == 1 else 0
    return dict(image=data['inputs'].permute(1, 2, 0).numpy()[..., ::-1],  # BGR -> RGB
                truth=(labels[0] == concept).numpy(),
                target=target[0, 0].numpy(),
                raw=raw[0, 0].numpy(),
                decoded=(decoded[0, 0] > head.threshold).numpy(),
                crop=(height, width))


def draw(rows, titles, out: str) -> None:
    fig, axes = plt.subplots(len(rows), 5, figsize=(12.5, 2.6 * len(rows)), squeeze=False)
    for row, maps in zip(axes, rows):
        height, width = maps['crop']
        row[0].imshow(maps['image'])
        row[1].imshow(maps['truth'][:height, :width], cmap='gray', vmin=0, vmax=1)
        # IoU targets are small (the union counts the image's whole concept area): own scale.
        for ax, key in zip(row[2:4], ('target', 'raw')):
            top = max(float(maps[key].max()), 1e-6) if key == 'target' else 1.0
            shown = ax.imshow(maps[key][:height, :width], cmap='viridis', vmin=0, vmax=top)
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        row[4].imshow(maps['decoded'][:height, :width], cmap='gray', vmin=0, vmax=1)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main():
    args = parse_args()
    cfg = load_analysis_config(args.config, args.cfg_options)
    model = init_model(cfg, args.checkpoint, device='cpu')
    if not isinstance(model.decode_head, Net2VecHead):
        raise TypeError(f'model.decode_head is {type(model.decode_head).__name__}, not Net2VecHead')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    bad = [i for i in args.indices if not 0 <= i < len(dataset)]
    if bad:
        raise IndexError(f'--indices {bad} are outside the test dataset of {len(dataset)} images')
    head = model.decode_head
    concept = dataset.metainfo['classes'][-1] if head.out_channels == 1 else dataset.metainfo['classes'][0]
    encoded = 'IoU target' if head.encoding else 'target (raw mask)'
    titles = ['image', f'true mask ({concept})', encoded, 'raw probe output',
              f'decoded > {head.threshold:g}' if head.encoding else f'output > {head.threshold:g}']
    draw([probe_maps(model, dataset[i]) for i in args.indices], titles, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
