# The embedded dataset's COCO boxes shrunk as tiny_shapes.py shrinks its segmentation maps (the same
# lines over the other host's dataset base: mmengine refuses one key in two sibling bases).
_base_ = '../../../configs/_base_/datasets/synthetic_shapes_coco.py'
data_root = 'data/synthetic_shapes_tiny/'
synthesis = dict(seed=0, num_train=8, num_val=4, size=64)
tiny_loader = dict(num_workers=0, persistent_workers=False,  # what every dataloader gets
                   dataset=dict(data_root=data_root, synthesis=synthesis))
train_dataloader = dict(tiny_loader, batch_size=2)
# The base's test pipeline at the images' 64 px (a base list cannot be changed by one item).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
val_dataloader = test_dataloader = dict(tiny_loader,
                                        dataset=dict(tiny_loader['dataset'], pipeline=test_pipeline))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
