"""Fixtures of the deployment tests."""
import pytest
import torch

TRAIN_ITERS = 20


@pytest.fixture(scope='session')
def spread_scores():
    """``spread_scores(model)``: seeded detector weights whose scores NMS does not find tied.

    DLDE's class means become random unit directions (zero means give every anchor the same score);
    RetinaNet's classifier weights N(0, 3), its init's N(0, 0.01) giving scores within 0.01 of 0.01.
    """
    def spread(model):
        head = model.bbox_head
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            if hasattr(head, 'means'):
                head.means.copy_(torch.nn.functional.normalize(
                    torch.randn(head.means.shape, generator=generator), dim=1))
            else:
                weight = head.retina_cls.weight
                weight.copy_(3 * torch.randn(weight.shape, generator=generator))
        return model

    return spread


@pytest.fixture(scope='session')
def trained_like(data_root, tmp_path_factory):
    """``trained_like(name, options)``: the tiny config's model trained for ``TRAIN_ITERS`` iterations
    (seed 0, AdamW at a constant lr of 1e-3) on the tiny synthetic dataset, in eval mode.

    What random weights lack and a trained model has: BatchNorm running statistics of real data
    (random init's are 0 / 1, which an exporter may fold differently), weights moved from their
    init's scale, confident logits (segmentation classes far apart; DLDE scores near 1, RetinaNet's
    spread), DLDE class means tracked from the data. Net2Vec's backbone is frozen, as in its recipe.
    """
    from mmengine.runner import Runner

    from mmext.analysis.models import quiet_logs
    from mmext.testing import tiny_config

    def train(name, options=None):
        quiet_logs()
        cfg = tiny_config(name, data_root, tmp_path_factory.mktemp(f'{name}_trained'), dict(
            options or {}, param_scheduler=[], randomness=dict(seed=0),
            train_cfg=dict(max_iters=TRAIN_ITERS, val_interval=TRAIN_ITERS + 1),
            val_dataloader=None, val_cfg=None, val_evaluator=None,
            default_hooks=dict(checkpoint=None, logger=dict(interval=TRAIN_ITERS))))
        cfg.optim_wrapper.optimizer.lr = 1e-3
        runner = Runner.from_cfg(cfg)
        runner.train()
        return runner.model.eval()

    return train
