# PointRend, ResNetV1c-50 + FPN: mmseg's configs/_base_/models/pointrend_r50.py with mmext's head.
_base_ = 'mmseg::_base_/models/pointrend_r50.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=[
        dict(
            type='FPNHead',
            in_channels=[256, 256, 256, 256],
            in_index=[0, 1, 2, 3],
            feature_strides=[4, 8, 16, 32],
            channels=128,
            dropout_ratio=-1,
            num_classes=19,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        dict(
            type='PointRendHead',
            in_channels=[256],
            in_index=[0],
            channels=256,
            num_fcs=3,
            coarse_pred_each_layer=True,
            dropout_ratio=-1,
            num_classes=19,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ],
    # 8192 = 1024 * 2048 / 16^2, detectron2's value; mmseg's 8196 is a typo (the paper's 8096 another).
    test_cfg=dict(subdivision_num_points=8192))
