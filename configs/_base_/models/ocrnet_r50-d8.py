# OCRNet, ResNetV1c-50-D8: mmseg's configs/_base_/models/ocrnet_r50-d8.py with mmext's head in the
# place of OCRHead.
_base_ = 'mmseg::_base_/models/ocrnet_r50-d8.py'
model = dict(decode_head=[
    _base_.model.decode_head[0],  # noqa: F821
    dict(_base_.model.decode_head[1], type='ObjectContextHead'),  # noqa: F821
])
