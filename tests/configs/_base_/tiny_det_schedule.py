# The embedded detection schedule shrunk to 4 iterations at a constant rate, saving every 2.
_base_ = '../../../configs/_base_/schedules/adamw_1200it_cpu.py'
max_iters = 4
param_scheduler = [dict(type='LinearLR', start_factor=1.0, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
