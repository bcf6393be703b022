# configs/retinanet_r50.py shrunk for a seconds-long end-to-end test, as dlde_tiny.py shrinks its DLDE
# variant: a ResNet-18 with 8 base channels and a 16-channel FPN on 64 px images. The tests point
# data_root at a temporary folder.
_base_ = '../../configs/retinanet_r50.py'
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1))
custom_hooks = [dict(type='DetClassCheckHook'), dict(type='FiniteCheckHook')]
# Its own folder, not the full configs' data/synthetic_shapes/: a folder holds one parameter set.
data_root = 'data/synthetic_shapes_tiny/'
synthesis = dict(seed=0, num_train=8, num_val=4, size=64)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, synthesis=synthesis))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, synthesis=synthesis))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
max_iters = 4
param_scheduler = [dict(type='LinearLR', start_factor=1.0, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
