"""Set IoU of each class (hybrid_learning's ``SetIoU``, Net2Vec's concept score) as an mmseg metric."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class SetIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` that also returns each class's set IoU.

    The set IoU of a class is its intersection summed over the dataset divided by its union summed
    over the dataset (not a mean of per-image IoUs), in percent; ``IoUMetric`` computes it for every
    class but returns only the means. For a binary concept dataset (classes ('background',
    concept)), ``IoU.<concept>`` is the Net2Vec score of a concept probe. A class whose union is
    empty on the whole dataset gets NaN.

    Args:
        classes: names of the classes to return (default: every class but the first, the
            background of a concept dataset).
        **kwargs: ``IoUMetric`` arguments (``ignore_index``, ``iou_metrics``, ``prefix``, ...).
    """

    def __init__(self, classes: Optional[Sequence[str]] = None, **kwargs):
        super().__init__(**kwargs)
        self.classes = None if classes is None else list(classes)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        names = list(self.dataset_meta['classes'])
        wanted = names[1:] if self.classes is None else self.classes
        unknown = set(wanted) - set(names)
        if unknown:
            raise ValueError(
                f'SetIoUMetric: classes {sorted(unknown)} are not among the dataset classes {names}')
        intersect = sum(r[0] for r in results).double().numpy()
        union = sum(r[1] for r in results).double().numpy()
        with np.errstate(invalid='ignore', divide='ignore'):
            iou = intersect / union
        for name in wanted:
            metrics[f'IoU.{name}'] = float(np.round(iou[names.index(name)] * 100, 2))
        return metrics
