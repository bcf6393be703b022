# configs/dlde_retinanet_r50.py shrunk as retinanet_tiny.py shrinks its baseline, with 8-d embeddings in
# 'manual' mean mode and its hook (initialising pass, update every 2 iterations).
_base_ = './retinanet_tiny.py'
model = dict(bbox_head=dict(type='DLDEHead', embedding_size=8, means_update='manual', means_lr=0.01))
custom_hooks = [dict(type='DetClassCheckHook'), dict(type='FiniteCheckHook'),
                dict(type='DLDEMeansHook', interval=2, init_pass=True)]
