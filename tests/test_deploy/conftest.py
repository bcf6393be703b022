"""Fixtures of the deployment tests."""
import pytest
import torch


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
