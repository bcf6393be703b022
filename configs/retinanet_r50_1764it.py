# RetinaNet R50-FPN (mmdet's RetinaHead) given the wall-clock of dlde_retinanet_r50_e256.py (DLDE at
# torchsight's embedding size): 1.47x its 1200 iterations (DLDE's measured whole-model train-step ratio
# at E=256, docs/dlde.md), the same schedule shape (warm-up and cosine stretched by the same factor).
_base_ = './retinanet_r50.py'
max_iters = 1764
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=147, by_epoch=False),
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=147, end=max_iters, T_max=max_iters - 147,
         by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
