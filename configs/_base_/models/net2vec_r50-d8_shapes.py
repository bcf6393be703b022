# net2vec_r50-d8.py on the embedded dataset: probes the backbone that `tools/train.py configs/ocr_r50.py`
# trained (work_dirs/ocr_r50/iter_640.pth), on 128 px inputs, at the thresholds measured best.
_base_ = 'net2vec_r50-d8.py'
backbone_checkpoint = 'work_dirs/ocr_r50/iter_640.pth'
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint, prefix='backbone.')),
    decode_head=dict(threshold=0.8, loss_decode=dict(target_thresh=0.03)))
