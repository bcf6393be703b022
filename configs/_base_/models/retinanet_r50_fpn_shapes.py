# mmdet's RetinaNet R50-FPN set up for the embedded dataset's COCO boxes: its 5 classes, from scratch.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    # From scratch: no ImageNet weights, nothing frozen, BN statistics trained.
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    bbox_head=dict(num_classes=5))
