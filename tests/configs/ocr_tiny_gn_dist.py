# ocr_tiny.py for the 1-process vs 2-process loss test (tests/test_distributed): a 2-process run with
# batch b per process computes the losses of a 1-process run with batch 2b only where nothing depends
# on how the batch is split, so this variant removes what does:
# - GroupNorm instead of BN: BN normalises with the statistics of each process's own b images;
# - no dropout and no RandomFlip: every process draws its own masks and flips from the same seed.
# RankProbeHook (tests/test_distributed/probe, on PYTHONPATH) records every rank's losses and state.
_base_ = './ocr_tiny.py'
custom_imports = dict(imports=['mmext', 'mmext_dist_probe'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='RankProbeHook')]  # noqa: F821
norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=[
        dict(head, norm_cfg=norm_cfg, dropout_ratio=0.0)
        for head in _base_.model.decode_head  # noqa: F821
    ])
train_dataloader = dict(dataset=dict(
    pipeline=[step for step in _base_.train_pipeline if step['type'] != 'RandomFlip']))  # noqa: F821
