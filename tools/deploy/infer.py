"""Run an exported model on images and write pictures: mask overlays (segmentation) or boxes with
class and score (detection)."""
import argparse
import sys
from pathlib import Path

import cv2

from mmext.deploy import BACKENDS, PRECISIONS, DeployedModel, DeployError
from mmext.deploy.deployed_model import load_images
from mmext.deploy.drawing import draw_boxes, overlay_labels


def parse_args():
    parser = argparse.ArgumentParser(description='Predict with an exported model')
    parser.add_argument('export_dir')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--out', required=True, help='directory for the pictures')
    parser.add_argument('--backend', choices=BACKENDS, default='onnxruntime')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32')
    return parser.parse_args()


def main():
    args = parse_args()
    model = DeployedModel(args.export_dir, args.backend, args.precision)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path, image in zip(args.images, load_images(args.images)):
        sample = model.predict([image])[0]  # one at a time: images may differ in size
        if model.task == 'detection':
            boxes = sample.pred_instances
            picture = draw_boxes(image, boxes.bboxes.numpy(), boxes.labels.numpy(), boxes.scores.numpy(),
                                 model.classes, model.spec['palette'])
        else:
            labels = sample.pred_sem_seg.data[0].numpy().astype(int)
            picture = overlay_labels(image, labels, model.spec['palette'])
        target = out / Path(path).name
        cv2.imwrite(str(target.with_suffix('.png')), picture)
        print(f'{path} -> {target.with_suffix(".png")}')


if __name__ == '__main__':
    try:
        main()
    except DeployError as error:  # a refused file or input: its reason, without a traceback
        sys.exit(f'{Path(__file__).name}: {error}')
