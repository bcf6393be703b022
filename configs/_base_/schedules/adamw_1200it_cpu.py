# The embedded detection recipes' schedule: AdamW with gradient clipping, 1200 iterations of 4 images
# (warm-up, cosine), from scratch in a 10-minute CPU budget. On top of det_runtime.py, whose
# default_hooks and log_processor it changes (mmengine refuses one key in two sibling bases).
_base_ = '../det_runtime.py'
# bf16 where the CPU has bf16 units, fp32 elsewhere (the log says which), as the segmentation recipes:
# RetinaNet and DLDE scored within fp32's seed range in bf16 (docs/mixed_precision.md). The results
# of docs/model_zoo.md were trained in fp32: tools/train.py --fp32 reproduces them.
optim_wrapper = dict(
    type='MixedPrecisionOptimWrapper', unsupported='fp32',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05), clip_grad=dict(max_norm=10, norm_type=2))
max_iters = 1200
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=100, by_epoch=False),
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=100, end=max_iters, T_max=max_iters - 100,
         by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
