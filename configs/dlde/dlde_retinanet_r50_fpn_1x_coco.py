# Full recipe: mmdet's retinanet_r50_fpn_1x_coco.py with the DLDE head (upstream settings:
# ImageNet-pretrained ResNet-50, 8 GPUs x 2 images, SGD 0.01, 12 epochs).
_base_ = [
    '../_base_/models/dlde_retinanet_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py', '../_base_/det_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'
]
# optimizer, as mmdet's retinanet_r50_fpn_1x_coco.py
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
