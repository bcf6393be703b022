# PointRend R50-FPN with mmext's PointRendHead on the embedded dataset, from scratch on CPU.
# mmseg's built-in head on the same everything: --cfg-options model.decode_head.1.type=PointHead
# The coarse FPN prediction of the same model: --cfg-options model.test_cfg.subdivision_steps=0
_base_ = [
    '_base_/models/pointrend_r50_shapes.py', '_base_/datasets/synthetic_shapes.py',
    '_base_/seg_runtime.py', '_base_/schedules/adamw_640it_cpu.py'
]

# 1000 iterations instead of the schedule's 640: an R50-FPN iteration costs about half an R50-D8 one,
# so this still trains in about 8 minutes on 2 cores.
max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
