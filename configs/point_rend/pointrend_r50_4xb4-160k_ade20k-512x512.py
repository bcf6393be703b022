# Full recipe: mmseg's pointrend_r50_4xb4-160k_ade20k-512x512.py with mmext's head (upstream
# settings: SyncBN, ImageNet-pretrained ResNetV1c-50, 4 GPUs x 4 images, 160k iterations).
_base_ = [
    '../_base_/models/pointrend_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    '../_base_/seg_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
# The crop and class lines are mmseg's recipe lines; a shared base cannot hold them (siblings may not
# repeat the model key, and the heads come from this file's own model base).
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=[
        dict(head, num_classes=150) for head in _base_.model.decode_head  # noqa: F821
    ])
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, start_factor=0.1, begin=0, end=200),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=200, end=160000, by_epoch=False)
]
