# dlde_tiny.py plus RankProbeHook (tests/test_distributed/probe, on PYTHONPATH), which records every
# rank's losses and final state (the DLDE class means included) for the distributed tests.
_base_ = './dlde_tiny.py'
custom_imports = dict(imports=['mmext', 'mmext_dist_probe'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='RankProbeHook')]  # noqa: F821
