# The baseline of configs/net2vec_r50.py: the same probe on the same frozen backbone, trained with
# plain binary cross-entropy on the raw concept masks and predicting sigmoid > 0.5 without decoding.
_base_ = './net2vec_r50.py'
model = dict(
    decode_head=dict(
        encoding=None,
        threshold=0.5,
        loss_decode=dict(_delete_=True, type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                         loss_name='loss_bce')))
