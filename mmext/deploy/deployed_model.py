"""``DeployedModel``: an export directory on a backend, predicting mmseg / mmdet data samples."""
import os
import stat
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .backends import open_session
from .limits import ENV_VAR, DeployLimits, deploy_limits
from .spec import DeployError, check_batch, onnx_file, read_spec

Image = Union[str, Path, np.ndarray]
# Formats that Pillow and OpenCV both identify by the same signature, and whose decoders (libpng,
# libjpeg, OpenCV's BMP reader, libwebp) allocate by the header's width and height.
IMAGE_FORMATS = ('PNG', 'JPEG', 'BMP', 'WEBP')


def check_header(path, file, max_pixels: int) -> None:
    """Refuse the image in the open ``file`` unless Pillow, reading its header and no pixels, identifies it
    as one of :data:`IMAGE_FORMATS` of at most ``max_pixels`` pixels.

    TIFF is not among them: OpenCV's TIFF decoder allocates by tile size, which width and height do not
    bound.
    """
    from PIL import Image as PillowImage
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit (PIL.Image.MAX_IMAGE_PIXELS); max_pixels decides.
            warnings.simplefilter('ignore', PillowImage.DecompressionBombWarning)
            width, height = PillowImage.open(file, formats=IMAGE_FORMATS).size
    except PillowImage.DecompressionBombError:
        raise DeployError(f'{path}: over {2 * PillowImage.MAX_IMAGE_PIXELS} pixels, where Pillow stops '
                          f'reading headers (PIL.Image.MAX_IMAGE_PIXELS); mmext.deploy decodes at most '
                          f'{max_pixels}') from None
    except Exception as error:  # what Pillow raises on a header it cannot read varies with the plugin
        raise DeployError(f'{path}: not a {", ".join(IMAGE_FORMATS)} image whose header Pillow reads '
                          f'({error})') from None
    if width * height > max_pixels:
        raise DeployError(f'{path}: {width} x {height} = {width * height} pixels, over the limit of '
                          f'{max_pixels} (DeployLimits.max_image_pixels, {ENV_VAR})')


def read_image(path, max_pixels: int) -> np.ndarray:
    """The (H, W, 3) uint8 BGR image of the file ``path``, decoded as ``mmcv.imread`` decodes it, once
    :func:`check_header` has passed it.

    The bytes whose header is checked are the bytes decoded. OpenCV's own limit cannot serve:
    ``OPENCV_IO_MAX_IMAGE_PIXELS`` is read once, when ``cv2`` is imported.
    """
    import mmcv
    with open(path, 'rb') as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise DeployError(f'{path}: not a regular file')
        check_header(path, file, max_pixels)
        file.seek(0)
        image = mmcv.imfrombytes(file.read())
    if image is None:
        raise DeployError(f'{path}: OpenCV cannot decode it')
    return image


def load_images(images: Sequence[Image], max_pixels: Optional[int] = None) -> List[np.ndarray]:
    """(H, W, 3) uint8 BGR arrays (mmcv's loading convention) from paths (:func:`read_image`) or arrays.

    Args:
        max_pixels: the largest width x height decoded from a file; default :func:`deploy_limits`'.
    """
    max_pixels = deploy_limits().max_image_pixels if max_pixels is None else max_pixels
    return [read_image(image, max_pixels) if isinstance(image, (str, Path)) else np.asarray(image)
            for image in images]


def stack_images(images: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W, 3) arrays of one size -> (B, 3, H, W) float32 batch."""
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise DeployError(f'one batch needs images of one size, got {sorted(shapes)}')
    if images[0].ndim != 3:
        raise DeployError(f'images must be (H, W, C) arrays, got shape {images[0].shape}')
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)


def fit_to_export(images: Sequence[np.ndarray], spec: dict) -> np.ndarray:
    """(H, W, 3) arrays -> the (B, 3, H, W) float32 batch the export takes: a static export's input size
    by padding each image at the bottom and right with zeros, as mmseg's and mmdet's data preprocessors
    pad (an image larger than it is refused); a dynamic export's, by stacking images of one size."""
    height, width = spec['input']['shape'][2:]
    if height is None:
        return stack_images(images)
    padded = []
    for image in images:
        if image.ndim != 3 or image.shape[0] > height or image.shape[1] > width:
            raise DeployError(f'an image of shape {image.shape} does not fit this static export of '
                              f'{height} x {width}; export with --dynamic or a larger --shape')
        padded.append(np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0))))
    return stack_images(padded)


def seg_samples(logits: np.ndarray, threshold, sizes: Sequence[Tuple[int, int]] = (),
                metainfos: Sequence[dict] = (), align_corners: bool = False) -> list:
    """(B, K, H, W) logits -> SegDataSamples as mmseg's ``postprocess_result`` makes them: each image's
    logits cropped to its ``sizes`` (the padding of :func:`fit_to_export` removed) and resized
    (bilinear, ``align_corners`` of the model) to its meta's ``ori_shape`` where a test-time resize
    changed it; ``seg_logits`` (sigmoid for K = 1) and ``pred_sem_seg``."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for index, image_logits in enumerate(torch.from_numpy(logits)):
        meta = metainfos[index] if index < len(metainfos) else {}
        if index < len(sizes):
            image_logits = image_logits[:, :sizes[index][0], :sizes[index][1]]
        ori_shape = tuple(meta.get('ori_shape') or image_logits.shape[1:])
        if ori_shape != tuple(image_logits.shape[1:]):
            image_logits = torch.nn.functional.interpolate(
                image_logits[None], size=ori_shape, mode='bilinear', align_corners=align_corners)[0]
        if image_logits.shape[0] > 1:
            pred = image_logits.argmax(dim=0, keepdim=True)
        else:
            image_logits = image_logits.sigmoid()
            pred = (image_logits > threshold).to(image_logits)
        sample = SegDataSample(metainfo=dict(img_shape=tuple(image_logits.shape[1:]),
                                             ori_shape=tuple(image_logits.shape[1:])))
        sample.set_metainfo(meta)
        sample.seg_logits = PixelData(data=image_logits)
        sample.pred_sem_seg = PixelData(data=pred)
        samples.append(sample)
    return samples


def det_samples(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                sizes: Sequence[Tuple[int, int]], metainfos: Sequence[dict] = ()) -> list:
    """The padded (B, M, 4) boxes, (B, M) scores and labels of a detector graph -> DetDataSamples
    whose ``pred_instances`` hold the kept boxes (label >= 0), as mmdet's ``predict`` makes them.

    Boxes are clipped to each image's own (H, W) ``sizes`` (the padding of :func:`fit_to_export`
    removed); a meta's ``scale_factor`` (of a test-pipeline ``Resize``) divides them back to the original
    image, as ``predict(rescale=True)`` does; the graph gives boxes in input pixels.
    """
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for index, (image_boxes, image_scores, image_labels) in enumerate(zip(boxes, scores, labels)):
        kept = image_labels >= 0
        height, width = sizes[index]
        meta = dict(img_shape=(height, width), ori_shape=(height, width))
        meta.update(metainfos[index] if index < len(metainfos) else {})
        image_boxes = torch.from_numpy(image_boxes[kept])
        image_boxes[:, 0::2] = image_boxes[:, 0::2].clamp(0, width)
        image_boxes[:, 1::2] = image_boxes[:, 1::2].clamp(0, height)
        if meta.get('scale_factor') is not None:
            scale_x, scale_y = meta['scale_factor']
            image_boxes = image_boxes * image_boxes.new_tensor([1 / scale_x, 1 / scale_y]).repeat(2)
        sample = DetDataSample(metainfo=meta)
        sample.pred_instances = InstanceData(bboxes=image_boxes, scores=torch.from_numpy(image_scores[kept]),
                                             labels=torch.from_numpy(image_labels[kept]))
        samples.append(sample)
    return samples


class DeployedModel:
    """An export directory of ``tools/deploy/export.py`` on ONNX Runtime or OpenVINO.

    Args:
        export_dir: holds ``deploy.json`` and the ONNX file.
        backend: 'onnxruntime' or 'openvino'.
        precision: 'fp32', or 'bf16' (OpenVINO on a CPU with bf16 instructions).
        limits: bounds on the ONNX file and on image files; default :func:`deploy_limits`.
    """

    def __init__(self, export_dir, backend: str = 'onnxruntime', precision: str = 'fp32',
                 limits: Optional[DeployLimits] = None):
        self.export_dir = Path(export_dir)
        self.limits = deploy_limits(limits)
        self.spec = read_spec(self.export_dir)
        self.task = self.spec['task']
        if self.task not in ('segmentation', 'detection'):
            raise DeployError(f'{export_dir}: task {self.task!r}; DeployedModel serves segmentation and '
                              'detection exports')
        self.session = open_session(onnx_file(self.export_dir, self.spec), backend, precision,
                                    root=self.export_dir, limits=self.limits)
        if precision == 'bf16' and not self.session.fp32_nodes:
            warnings.warn(f'{export_dir}: its ONNX file does not say which modules its nodes come from '
                          '(torch.onnx metadata), so OpenVINO bf16 runs every step in bf16, point selection '
                          'and box decoding included; re-export it with tools/deploy/export.py')

    @property
    def classes(self) -> list:
        return self.spec['classes']

    def run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        """The raw graph: (B, 3, H, W) float32 in 0..255 -> its named outputs."""
        check_batch(self.spec, batch)
        return self.session(batch)

    def predict(self, images: Sequence[Image], metainfos: Sequence[dict] = None) -> list:
        """Images (paths or (H, W, 3) uint8 BGR arrays; of one size for a dynamic export) -> SegDataSamples
        or DetDataSamples. A static export runs them in batches of its own size, the last one filled up
        with blank images.

        Args:
            metainfos: per image, meta to carry into the samples (e.g. the dataset's ``img_path``;
                a detection meta's ``scale_factor`` rescales its boxes, see :func:`det_samples`).
        """
        arrays = load_images(images, self.limits.max_image_pixels)
        metainfos = list(metainfos or ())
        batch_size = self.spec['input']['shape'][0] or len(arrays)
        samples = []
        for start in range(0, len(arrays), batch_size):
            chunk = arrays[start:start + batch_size]
            blanks = [np.zeros_like(chunk[0])] * (batch_size - len(chunk))
            outputs = {name: value[:len(chunk)] for name, value in
                       self.run(fit_to_export(chunk + blanks, self.spec)).items()}
            sizes, metas = [image.shape[:2] for image in chunk], metainfos[start:start + batch_size]
            if self.task == 'detection':
                samples += det_samples(outputs['boxes'], outputs['scores'], outputs['labels'], sizes, metas)
            else:
                samples += seg_samples(outputs['logits'], self.spec.get('threshold'), sizes, metas,
                                       self.spec.get('align_corners', False))
        return samples
