# dlde_retinanet_r50.py at torchsight's embedding size, 256: the reference setting (the README's first
# DLDE results; docs/dlde.md). It costs 1.44x RetinaNet's train step against 1.24x at the recipe's 128.
_base_ = './dlde_retinanet_r50.py'
model = dict(bbox_head=dict(embedding_size=256))
