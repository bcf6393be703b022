# The embedded segmentation dataset shrunk (tiny_data.py).
_base_ = ['../../../configs/_base_/datasets/synthetic_shapes.py', './tiny_data.py']
data_root = _base_.tiny_data_root  # noqa: F821
train_dataloader = dict(_base_.tiny_loader, batch_size=2)  # noqa: F821
val_dataloader = test_dataloader = _base_.tiny_loader  # noqa: F821
