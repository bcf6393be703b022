# PointRend, ResNetV1c-50 + FPN: mmseg's configs/_base_/models/pointrend_r50.py with mmext's head.
_base_ = 'mmseg::_base_/models/pointrend_r50.py'
model = dict(
    decode_head=[
        dict(head, type='PointRendHead') if head.type == 'PointHead' else head
        for head in _base_.model.decode_head  # noqa: F821  (mmengine provides _base_)
    ],
    # 8192 = 1024 * 2048 / 16^2, detectron2's value; mmseg's 8196 is a typo (the paper's 8096 another).
    test_cfg=dict(subdivision_num_points=8192))
