# RetinaNet R50-FPN (mmdet's configs/_base_/models/retinanet_r50_fpn.py) with mmext's DLDE head:
# the classification branch gives each anchor a unit embedding scored against tracked class means;
# everything else is RetinaHead's. DLDEHead's own defaults (embedding_size=256, means_update='batch',
# means_lr=0.1) are those of its signature (mmext/det/heads/dlde_head.py).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'
model = dict(bbox_head=dict(type='DLDEHead'))
