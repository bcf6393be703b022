"""The detection graph's fixed-size steps: padded candidate selection, NMS as ONNX NonMaxSuppression
(eager mmcv vs ONNX Runtime), padded top boxes."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from mmext.deploy.detection import level_candidates, multiclass_nms, top_kept
from mmext.deploy.export import export_graph


def test_level_candidates_pads_with_minus_inf_and_index_0():
    scores, indices = level_candidates(torch.tensor([[0.5, 0.0, 0.9, 0.2]]), nms_pre=6, score_thr=0.1)
    assert scores[0, :3].tolist() == pytest.approx([0.9, 0.5, 0.2])
    assert indices[0].tolist() == [2, 0, 3, 0, 0, 0] and torch.isinf(scores[0, 3:]).all()


def test_top_kept_pads_with_label_minus_1_score_0_box_0():
    boxes = torch.arange(12.).view(1, 3, 4)
    scores, labels = torch.tensor([[0.3, 0.8, 0.5]]), torch.tensor([[1, 0, 2]])
    selected = torch.tensor([[0, 2, 2], [0, 0, 1]])  # candidate 0 suppressed
    top_boxes, top_scores, top_labels = top_kept(boxes, scores, labels, selected, max_per_img=4)
    assert top_labels.tolist() == [[0, 2, -1, -1]]
    assert top_scores[0].tolist() == pytest.approx([0.8, 0.5, 0, 0])
    assert torch.equal(top_boxes[0, :2], boxes[0, [1, 2]]) and not top_boxes[0, 2:].any()


class NMS(nn.Module):
    output_names = ('selected',)

    def forward(self, images):  # (1, 3, K, 4): boxes in channel 0, two class scores in 1, 2
        return multiclass_nms(images[:, 0], images[:, 1:, :, 0], 2, 0.5, 0.1)


def test_nms_matches_onnx_runtime(tmp_path):
    ort = pytest.importorskip('onnxruntime')
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.], [2, 0, 12, 10]])
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.05, 0.6], [0.2, 0.95, 0.0, 0.3, 0.4]])
    inputs = torch.zeros(1, 3, 5, 4)
    inputs[0, 0], inputs[0, 1:, :, 0] = boxes, scores
    expected = NMS()(inputs)
    # class 0: box 0 suppresses 1 and 4 (IoU 0.68, 0.67), 3 scores below 0.1; class 1: box 1
    # suppresses 4, 3 and 0 (IoU 0.68, 0.61, 0.68), 2 scores 0
    assert expected.tolist() == [[0, 0, 0], [0, 0, 2], [0, 1, 1]]
    export_graph(NMS(), inputs, tmp_path / 'nms.onnx', dynamic=False, opset=18, output_names=NMS.output_names)
    session = ort.InferenceSession(str(tmp_path / 'nms.onnx'), providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    np.testing.assert_array_equal(got, expected.numpy())
