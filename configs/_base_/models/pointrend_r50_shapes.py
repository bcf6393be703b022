# pointrend_r50.py set up for the embedded dataset, as ocrnet_r50-d8_shapes.py sets up OCRNet (the same
# lines: each rewrites the decode heads of its own model base, which a shared base cannot reach).
_base_ = 'pointrend_r50.py'
norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 6  # background + the 5 shapes of SyntheticShapesDataset
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,  # nothing is downloaded; the full recipes keep ImageNet weights
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=[
        dict(head, num_classes=num_classes, **(dict(norm_cfg=norm_cfg) if 'norm_cfg' in head else {}))
        for head in _base_.model.decode_head  # noqa: F821  (mmengine provides _base_)
    ])
