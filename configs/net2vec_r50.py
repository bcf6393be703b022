# Net2Vec concept segmentation on the embedded dataset: a linear probe for the concept 'ring' on
# layer4 of the ResNet-50 trained by configs/ocr_r50.py, frozen, trained on IoU-encoded masks with
# the Net2Vec loss and predicting by intersect decoding.
#
#   .venv/bin/python tools/train.py configs/ocr_r50.py       # writes work_dirs/ocr_r50/iter_640.pth
#   .venv/bin/python tools/train.py configs/net2vec_r50.py   # probes its backbone
#
# Another checkpoint: --cfg-options model.backbone.init_cfg.checkpoint=PATH (any mmseg checkpoint with
# a ResNetV1c-50 under 'backbone.'). Another concept (a class name of SyntheticShapesDataset):
# --cfg-options {train,val,test}_dataloader.dataset.concept=cross, one key per dataloader. The
# plain-BCE probe on raw masks, the baseline: configs/net2vec_r50_bce.py.
_base_ = [
    '_base_/models/net2vec_r50-d8_shapes.py', '_base_/datasets/synthetic_shapes.py',
    '_base_/seg_runtime.py', '_base_/schedules/adamw_640it_cpu.py'
]
concept = 'ring'
# merged into each dataloader of the base (test_dataloader is val_dataloader there)
train_dataloader = val_dataloader = test_dataloader = dict(dataset=dict(concept=concept))
# Set IoU of the decoded concept masks on val (IoU.ring), Net2Vec's score of a concept probe.
val_evaluator = test_evaluator = dict(_delete_=True, type='SetIoUMetric', iou_metrics=['mIoU'])
