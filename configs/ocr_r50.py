# OCRNet R50-D8 with mmext's ObjectContextHead on the embedded dataset, from scratch on CPU.
# mmseg's built-in head on the same everything: --cfg-options model.decode_head.1.type=OCRHead
_base_ = [
    '_base_/models/ocrnet_r50-d8_shapes.py', '_base_/datasets/synthetic_shapes.py',
    '_base_/seg_runtime.py', '_base_/schedules/adamw_640it_cpu.py'
]
