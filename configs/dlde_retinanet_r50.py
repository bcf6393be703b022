# RetinaNet R50-FPN with mmext's DLDEHead on the embedded dataset's COCO boxes, from scratch on CPU:
# retinanet_r50.py (mmdet's RetinaHead, same backbone, data and schedule) with the DLDE head.
# embedding_size=128, not torchsight's 256 (dlde_retinanet_r50_e256.py): on the embedded data it scored
# 54.6 / 52.0 bbox mAP (seeds 0 / 1) against 256's 53.3 / 51.1, at 1.24x RetinaNet's train step and
# latency against 1.44x / 1.45x. Below 128 the class means collapsed onto one direction in 3 of 4 runs
# (docs/dlde.md, "Embedding size").
_base_ = './retinanet_r50.py'
model = dict(bbox_head=dict(type='DLDEHead', embedding_size=128, means_update='batch', means_lr=0.1))
