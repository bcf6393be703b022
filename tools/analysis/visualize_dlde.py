"""Show what a trained DLDE head learned: a PNG with the cosine-similarity matrix of its class means
and, per class, histograms of the cosine similarity of that class's positive anchor embeddings to
its own mean and to the other classes' means.

    .venv/bin/python tools/analysis/visualize_dlde.py configs/dlde_retinanet_r50.py \\
        work_dirs/dlde_retinanet_r50/iter_1200.pth --out work_dirs/dlde_retinanet_r50/dlde.png

Positive anchors are those mmdet's assigner (the config's ``train_cfg``) gives a class on the test
split's ground truth; ``--max-images`` bounds how many images are read.
"""
import argparse

import matplotlib
import numpy as np
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

from mmext.det.heads import DLDEHead
from mmext.engine import load_analysis_config

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--max-images', type=int, default=50)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


@torch.no_grad()
def positive_similarities(model, dataset, max_images: int):
    """Cosine similarities of the positive anchors' embeddings to every class mean.

    Returns:
        (P, C) similarities and (P,) labels of the P positive anchors of the first ``max_images``
        images.
    """
    head = model.bbox_head
    sims, labels = [], []
    for index in range(min(max_images, len(dataset))):
        batch = model.data_preprocessor(pseudo_collate([dataset[index]]), False)
        samples = batch['data_samples']
        metas = [s.metainfo for s in samples]
        embedding_maps, _ = head(model.extract_feat(batch['inputs']))
        anchors, valid = head.get_anchors([e.shape[-2:] for e in embedding_maps], metas, device='cpu')
        level_labels = head.get_targets(anchors, valid, [s.gt_instances for s in samples], metas)[0]
        for emb, lab in zip(embedding_maps, level_labels):
            lab = lab.flatten()
            positive = (lab < head.num_classes).nonzero().squeeze(1)
            sims.append(head.anchor_unit_embeddings(emb, positive) @ head.means.t())
            labels.append(lab[positive])
    return torch.cat(sims), torch.cat(labels)


def draw(means: torch.Tensor, sims: torch.Tensor, labels: torch.Tensor, classes, out: str) -> None:
    num_classes = len(classes)
    fig, axes = plt.subplots(1, num_classes + 1, figsize=(3.2 * (num_classes + 1), 3.2))
    matrix = (means @ means.t()).numpy()
    ax = axes[0]
    ax.imshow(matrix, vmin=-1, vmax=1, cmap='coolwarm')
    for i in range(num_classes):
        for j in range(num_classes):
            ax.text(j, i, f'{matrix[i, j]:.2f}', ha='center', va='center', fontsize=7)
    ax.set_xticks(range(num_classes), classes, rotation=45, fontsize=7)
    ax.set_yticks(range(num_classes), classes, fontsize=7)
    ax.set_title('cos(mean_i, mean_j)', fontsize=9)
    bins = np.linspace(-1, 1, 41)
    for c, ax in enumerate(axes[1:]):
        own = sims[labels == c]
        ax.hist(own[:, c].numpy(), bins=bins, density=True, alpha=0.7, label='own mean')
        others = torch.cat([own[:, :c], own[:, c + 1:]], dim=1).flatten()
        ax.hist(others.numpy(), bins=bins, density=True, alpha=0.5, label='other means')
        ax.set_title(f'{classes[c]} ({len(own)} anchors)', fontsize=9)
        ax.set_xlabel('cosine similarity', fontsize=8)
        ax.tick_params(labelsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    cfg = load_analysis_config(args.config, args.cfg_options)
    model = MODELS.build(cfg.model)  # with train_cfg: the assigner labels the positive anchors
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.eval()
    if not isinstance(model.bbox_head, DLDEHead):
        raise TypeError(f'model.bbox_head is {type(model.bbox_head).__name__}, not DLDEHead')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    sims, labels = positive_similarities(model, dataset, args.max_images)
    draw(model.bbox_head.means, sims, labels, dataset.metainfo['classes'], args.out)
    print(f'wrote {args.out} ({len(labels)} positive anchors)')


if __name__ == '__main__':
    main()
