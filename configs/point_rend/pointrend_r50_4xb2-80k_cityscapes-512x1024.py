# Full recipe: mmseg's pointrend_r50_4xb2-80k_cityscapes-512x1024.py with mmext's head (upstream
# settings: SyncBN, ImageNet-pretrained ResNetV1c-50, 4 GPUs x 2 images, 80k iterations).
_base_ = [
    '../_base_/models/pointrend_r50.py', 'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/seg_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
# The crop and class lines are mmseg's recipe lines; a shared base cannot hold them (siblings may not
# repeat the model key, and the heads come from this file's own model base).
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
param_scheduler = [
    dict(type='LinearLR', by_epoch=False, start_factor=0.1, begin=0, end=200),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=200, end=80000, by_epoch=False)
]
