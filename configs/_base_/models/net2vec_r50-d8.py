# Net2Vec concept probe on a frozen ResNetV1c-50-D8 (the backbone of ocrnet_r50-d8): mmext's
# Net2VecHead, a 1x1 convolution on layer4 (2048 channels, stride 8) trained on IoU-encoded masks.
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=True,  # frozen: the probe reads the trained network as it is
        frozen_stages=4,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='Net2VecHead',
        in_channels=2048,
        in_index=3,
        num_classes=2,  # background and the concept
        out_channels=1,
        encoding=dict(kernel_size=8),  # a box proto in input pixels
        threshold=0.5,
        align_corners=False,
        loss_decode=dict(type='Net2VecLoss', factor_pos_class='auto', target_thresh=0.5)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
