# From scratch in a 10-minute CPU budget (640 iterations of 4 images) for the embedded recipes.
# AdamW, not the upstream SGD lr=0.01, which scored lower on ocr_r50 in the same budget
# (15.9 vs 21.7 mIoU after 300 iterations).
# bf16 where the CPU has bf16 units (AVX512-BF16, AMX, Arm bf16), fp32 elsewhere, the log says which:
# OCR and PointRend scored within fp32's seed range in bf16 (docs/mixed_precision.md) in 0.6-0.7x the
# time. tools/train.py --fp32 trains in fp32; --amp refuses a CPU without bf16 units instead of
# falling back.
optim_wrapper = dict(
    type='MixedPrecisionOptimWrapper', unsupported='fp32',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
max_iters = 640
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
