# configs/retinanet_r50.py shrunk for a seconds-long end-to-end test: a ResNet-18 with 8 base channels
# and a 16-channel FPN on 64 px images, 4 iterations.
_base_ = [
    '../../configs/_base_/models/retinanet_r50_fpn_shapes.py', '_base_/tiny_shapes_coco.py',
    '_base_/tiny_det_schedule.py'
]
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1))
