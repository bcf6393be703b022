# Full recipe (upstream settings: SyncBN, ImageNet-pretrained ResNetV1c-50, 4 GPUs x 2 images, 40k).
_base_ = [
    '../_base_/models/ocrnet_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/seg_runtime.py', 'mmseg::_base_/schedules/schedule_40k.py'
]
# The crop and class lines are mmseg's recipe lines; a shared base cannot hold them (siblings may not
# repeat the model key, and the heads come from this file's own model base).
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
