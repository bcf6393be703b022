# RetinaNet R50-FPN (mmdet's RetinaHead) given the wall-clock of dlde_retinanet_r50.py (embedding size
# 32): 1.04x its 1200 iterations (the top of DLDE's measured whole-model train-step ratio, 1.03-1.04,
# docs/dlde.md), warm-up and cosine stretched by the same factor. DLDE's equal-cost baseline.
_base_ = './retinanet_r50.py'
max_iters = 1248
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=104, by_epoch=False),
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=104, end=max_iters, T_max=max_iters - 104,
         by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
