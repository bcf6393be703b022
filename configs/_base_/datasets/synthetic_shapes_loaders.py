# The embedded datasets' loaders, for both hosts' dataset bases (synthetic_shapes.py, _coco.py): 4
# training images a batch, 1 a test batch, one worker kept alive; each base adds its dataset.
train_dataloader = dict(batch_size=4, num_workers=1, persistent_workers=True,
                        sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader = dict(batch_size=1, num_workers=1, persistent_workers=True, drop_last=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
