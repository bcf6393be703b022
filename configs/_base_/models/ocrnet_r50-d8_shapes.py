# ocrnet_r50-d8.py set up for the embedded dataset: BN, its 6 classes, 128 px inputs, no pretrained weights.
_base_ = 'ocrnet_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 6  # background + the 5 shapes of SyntheticShapesDataset
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,  # nothing is downloaded; the full recipes keep ImageNet weights
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=[
        dict(head, num_classes=num_classes, norm_cfg=norm_cfg)
        for head in _base_.model.decode_head  # noqa: F821  (mmengine provides _base_)
    ])
