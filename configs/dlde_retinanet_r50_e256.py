# dlde_retinanet_r50.py at torchsight's embedding size, 256, and its class-mean rate 0.1: the reference
# setting (the README's first DLDE results; docs/dlde.md). It costs 1.44-1.57x RetinaNet's train step
# against 1.03-1.04x at the recipe's 32.
_base_ = './dlde_retinanet_r50.py'
model = dict(bbox_head=dict(embedding_size=256, means_lr=0.1))
