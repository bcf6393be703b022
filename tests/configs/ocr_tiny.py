# configs/ocr_r50.py shrunk for a seconds-long end-to-end test: a ResNetV1c-18 with 8 base channels
# on 64 px images. The tests point data_root at a temporary folder.
_base_ = '../../configs/ocr_r50.py'
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    decode_head=[
        dict(_base_.model.decode_head[0], in_channels=32, channels=16),  # noqa: F821
        dict(_base_.model.decode_head[1], in_channels=64, channels=16, ocr_channels=8),  # noqa: F821
    ])
# Its own folder, not the full configs' data/synthetic_shapes: a folder holds one parameter set.
data_root = 'data/synthetic_shapes_tiny'
synthesis = dict(seed=0, num_train=8, num_val=4, size=64)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, synthesis=synthesis))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, synthesis=synthesis))
test_dataloader = val_dataloader
max_iters = 4
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
