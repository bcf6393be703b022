# RetinaNet R50-FPN (mmdet's configs/_base_/models/retinanet_r50_fpn.py) with mmext's DLDE head:
# the classification branch gives each anchor a 256-d unit embedding scored against tracked class
# means; everything else is RetinaHead's.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'
model = dict(
    bbox_head=dict(
        type='DLDEHead',
        embedding_size=256,
        means_update='batch',
        means_lr=0.1))
