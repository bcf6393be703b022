# The embedded dataset's COCO boxes shrunk (tiny_data.py), tested at the images' 64 px.
_base_ = ['../../../configs/_base_/datasets/synthetic_shapes_coco.py', './tiny_data.py']
data_root = _base_.tiny_data_root  # noqa: F821
train_dataloader = dict(_base_.tiny_loader, batch_size=2)  # noqa: F821
test_pipeline = [  # the base's, at 64 px (a base list cannot be changed by one item)
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = test_dataloader = dict(
    _base_.tiny_loader, dataset=dict(_base_.tiny_loader.dataset, pipeline=test_pipeline))  # noqa: F821
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
