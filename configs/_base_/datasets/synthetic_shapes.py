# The embedded dataset (mmext.seg.datasets.SyntheticShapesDataset): generated on first use under data_root.
# A data_root holds one parameter set (dataset.synthesis): asking it for another is an error.
_base_ = './synthetic_shapes_loaders.py'
dataset_type = 'SyntheticShapesDataset'
data_root = 'data/synthetic_shapes'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
__shapes = dict(type=dataset_type, data_root=data_root)  # every split's dataset (a __ name: not kept)
train_dataloader = dict(dataset=dict(
    __shapes, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
    pipeline=train_pipeline))
val_dataloader = test_dataloader = dict(dataset=dict(
    __shapes, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'), pipeline=test_pipeline))
# Boundary IoU (width 3 px) beside mIoU: the contour quality that PointRend is for.
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='BoundaryIoUMetric', boundary_width=3),
]
test_evaluator = val_evaluator
