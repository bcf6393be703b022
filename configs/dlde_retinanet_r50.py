# RetinaNet R50-FPN with mmext's DLDEHead on the embedded dataset's COCO boxes, from scratch on CPU:
# retinanet_r50.py (mmdet's RetinaHead, same backbone, data and schedule) with the DLDE head.
# embedding_size=32, not torchsight's 256 (dlde_retinanet_r50_e256.py): 1.03-1.04x RetinaNet's train step,
# 1.09-1.10x its latency and 1.12x its head memory, against 1.44-1.57x / 1.44x / 3.12x at 256.
# means_lr=0.01, not 0.1: at 0.1 the class means of small embeddings collapsed onto one direction in 3 of
# 5 runs (E = 32 and 64); at 0.01, E = 32 reached 53.4 / 51.6 / 52.1 bbox mAP on seeds 0 / 1 / 2
# (docs/dlde.md, "Embedding size").
_base_ = './retinanet_r50.py'
model = dict(bbox_head=dict(type='DLDEHead', embedding_size=32, means_update='batch', means_lr=0.01))
