# RetinaNet R50-FPN (mmdet's RetinaHead) given the wall-clock of dlde_retinanet_r50.py (embedding size
# 32): 1.04x its 1200 iterations (the top of DLDE's measured whole-model train-step ratio, 1.03-1.04,
# docs/dlde.md), warm-up and cosine stretched by the same factor. DLDE's equal-cost baseline.
_base_ = './retinanet_r50.py'
# retinanet_r50_1488it.py and _1764it.py repeat these lines for their max_iters: mmengine's inheritance
# does not recompute values derived from an overridden variable.
max_iters = 1248
# retinanet_r50.py's warm-up (100 of 1200 iterations) and cosine, stretched to max_iters
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_iters // 12),  # noqa: F821
    dict(_base_.param_scheduler[1], begin=max_iters // 12, end=max_iters,  # noqa: F821
         T_max=max_iters - max_iters // 12),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
