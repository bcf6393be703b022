# Full recipe: mmseg's ocrnet_hr18_4xb4-80k_ade20k-512x512.py with mmext's head.
_base_ = [
    '../_base_/models/ocrnet_hr18.py', 'mmseg::_base_/datasets/ade20k.py',
    '../_base_/seg_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
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
