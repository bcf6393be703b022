# OCRNet, ResNetV1c-50-D8: mmseg's configs/_base_/models/ocrnet_r50-d8.py with mmext's head.
_base_ = 'mmseg::_base_/models/ocrnet_r50-d8.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(decode_head=[
    dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    dict(
        type='ObjectContextHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        ocr_channels=256,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
])
