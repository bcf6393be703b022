# OCRNet R50-D8 with mmext's ObjectContextHead on the embedded dataset, from scratch on CPU.
# mmseg's built-in head on the same everything: --cfg-options model.decode_head.1.type=OCRHead
_base_ = [
    '_base_/models/ocrnet_r50-d8.py', '_base_/datasets/synthetic_shapes.py',
    '_base_/seg_runtime.py', '_base_/schedules/adamw_640it_cpu.py'
]
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

