# The embedded dataset's COCO instances (mmext.det.datasets.SyntheticShapesCocoDataset): the same
# 128 x 128 scenes as synthetic_shapes.py, 5 object classes, generated on first use under data_root.
# A data_root holds one parameter set (dataset.synthesis): asking it for another is an error.
_base_ = './synthetic_shapes_loaders.py'
dataset_type = 'SyntheticShapesCocoDataset'
data_root = 'data/synthetic_shapes/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),  # the images' size: the export size, scale 1
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
__shapes = dict(type=dataset_type, data_root=data_root)  # every split's dataset (a __ name: not kept)
train_dataloader = dict(dataset=dict(
    __shapes, ann_file='annotations/instances_train.json', data_prefix=dict(img='img_dir/train/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=1), pipeline=train_pipeline))
val_dataloader = test_dataloader = dict(dataset=dict(
    __shapes, ann_file='annotations/instances_val.json', data_prefix=dict(img='img_dir/val/'), test_mode=True,
    pipeline=test_pipeline))
val_evaluator = dict(
    type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric='bbox')
test_evaluator = val_evaluator
