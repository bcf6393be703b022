# RetinaNet R50-FPN (mmdet's RetinaHead) given the wall-clock of DLDE at embedding size 128
# (dlde_retinanet_r50.py with --cfg-options model.bbox_head.embedding_size=128
# model.bbox_head.means_lr=0.1): 1.24x its 1200 iterations (DLDE's measured whole-model train-step ratio,
# docs/dlde.md), warm-up and cosine stretched by the same factor. That setting's equal-cost baseline.
_base_ = './retinanet_r50.py'
max_iters = 1488
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=124, by_epoch=False),
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=124, end=max_iters, T_max=max_iters - 124,
         by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
