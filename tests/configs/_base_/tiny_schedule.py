# The embedded segmentation schedule shrunk to 4 iterations, logging each, validating and saving at the end.
_base_ = '../../../configs/_base_/schedules/adamw_640it_cpu.py'
max_iters = 4
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters))
