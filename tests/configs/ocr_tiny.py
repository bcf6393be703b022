# configs/ocr_r50.py shrunk for a seconds-long end-to-end test: a ResNetV1c-18 with 8 base channels
# on 64 px images, saving every 2 of 4 iterations.
_base_ = [
    '../../configs/_base_/models/ocrnet_r50-d8_shapes.py', '_base_/tiny_shapes.py',
    '../../configs/_base_/seg_runtime.py', '_base_/tiny_schedule.py'
]
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    decode_head=[
        dict(_base_.model.decode_head[0], in_channels=32, channels=16),  # noqa: F821
        dict(_base_.model.decode_head[1], in_channels=64, channels=16, ocr_channels=8),  # noqa: F821
    ])
default_hooks = dict(checkpoint=dict(interval=2))
