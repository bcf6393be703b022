# configs/pointrend_r50.py shrunk for a seconds-long end-to-end test: a ResNetV1c-18 with 8 base
# channels and a 16-channel FPN on 64 px images, 4 iterations.
_base_ = [
    '../../configs/_base_/models/pointrend_r50_shapes.py', '_base_/tiny_shapes.py',
    '../../configs/_base_/seg_runtime.py', '_base_/tiny_schedule.py'
]
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    decode_head=[
        dict(_base_.model.decode_head[0], in_channels=[16] * 4, channels=16),  # noqa: F821
        dict(_base_.model.decode_head[1], in_channels=[16], channels=16),  # noqa: F821
    ],
    train_cfg=dict(num_points=256),
    test_cfg=dict(subdivision_num_points=512))
