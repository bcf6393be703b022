# configs/net2vec_r50.py shrunk for a seconds-long end-to-end test: probes the ResNetV1c-18 of
# tests/configs/ocr_tiny.py on 64 px images. The tests set the backbone checkpoint.
_base_ = [
    '../../configs/_base_/models/net2vec_r50-d8_shapes.py', '_base_/tiny_shapes.py',
    '../../configs/_base_/seg_runtime.py', '_base_/tiny_schedule.py'
]
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18, stem_channels=16, base_channels=8),
    decode_head=dict(in_channels=64))
concept = 'ring'
train_dataloader = val_dataloader = test_dataloader = dict(dataset=dict(concept=concept))
val_evaluator = test_evaluator = dict(_delete_=True, type='SetIoUMetric', iou_metrics=['mIoU'])
