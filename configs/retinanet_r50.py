# RetinaNet R50-FPN (mmdet's RetinaHead) on the embedded dataset's COCO boxes, from scratch on CPU:
# the baseline of dlde_retinanet_r50.py, which changes only the head.
_base_ = [
    '_base_/models/retinanet_r50_fpn_shapes.py', '_base_/datasets/synthetic_shapes_coco.py',
    '_base_/schedules/adamw_1200it_cpu.py'  # with _base_/det_runtime.py
]
