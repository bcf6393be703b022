# RetinaNet R50-FPN with mmext's DLDEHead on the embedded dataset's COCO boxes, from scratch on CPU:
# retinanet_r50.py (mmdet's RetinaHead, same backbone, data and schedule) with the DLDE head.
_base_ = './retinanet_r50.py'
model = dict(bbox_head=dict(type='DLDEHead', embedding_size=256, means_update='batch', means_lr=0.1))
