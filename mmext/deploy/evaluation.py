"""A config's test set through a deployed model, scored by the config's own evaluator."""
from typing import Dict

from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from .deployed_model import DeployedModel


def evaluate(deployed: DeployedModel, cfg: Config) -> Dict[str, float]:
    """Run ``cfg.test_dataloader`` through ``deployed`` and return ``cfg.test_evaluator``'s metrics,
    the numbers ``tools/test.py`` prints for the PyTorch model."""
    init_default_scope(cfg.default_scope)
    dataloader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataloader.dataset.metainfo
    for batch in dataloader:
        images = [image.permute(1, 2, 0).numpy() for image in batch['inputs']]
        samples = batch['data_samples']
        predictions = deployed.predict(images, [sample.metainfo for sample in samples])
        for sample, prediction in zip(samples, predictions):
            for key in prediction.keys():  # the predictions join the ground truth, as predict does
                sample.set_field(prediction.get(key), key)
        evaluator.process(data_samples=samples, data_batch=batch)
    return evaluator.evaluate(len(dataloader.dataset))
