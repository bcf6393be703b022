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
    '_base_/models/net2vec_r50-d8.py', '_base_/datasets/synthetic_shapes.py',
    '_base_/seg_runtime.py', '_base_/schedules/adamw_640it_cpu.py'
]
concept = 'ring'
backbone_checkpoint = 'work_dirs/ocr_r50/iter_640.pth'
# IoU targets are small here: the union of the IoU counts the whole concept mask of the image (every
# ring in it), so an 8 px box inside a ring scores 64 / |M|, 0.03 to 0.13 on these images; the loss
# counts IoU > 0.03 as a hit. The decoded probability (the mean of the probe over the windows that
# cover a pixel) is thresholded at 0.8. Chosen by a sweep on val (README, Net2Vec).
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint, prefix='backbone.')),
    decode_head=dict(threshold=0.8, loss_decode=dict(target_thresh=0.03)))
train_dataloader = dict(dataset=dict(concept=concept))
val_dataloader = dict(dataset=dict(concept=concept))
test_dataloader = val_dataloader
# Set IoU of the decoded concept masks on val (IoU.ring), Net2Vec's score of a concept probe.
val_evaluator = dict(_delete_=True, type='SetIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
