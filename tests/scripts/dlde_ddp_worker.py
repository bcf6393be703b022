"""Run by torchrun with 2 CPU processes (gloo) from tests/test_distributed/test_dlde_ddp.py: every rank
trains one step on its own ground truth, then rank 0 writes every rank's means and the expected ones to a
JSON file."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_gather, get_rank

from mmext.engine import teardown_distributed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'test_det/test_heads'))
from test_dlde_head import ONE_GT, _feats, _gt, _head, _positive_embedding_sums, _samples  # noqa: E402


def main(out_path, means_update):
    torch_dist.init_process_group('gloo')  # mmengine's init_dist would call torch.cuda.set_device
    rank = get_rank()
    head = _head(means_update=means_update).train()  # same seed: identical weights on both ranks
    head.means_hook_attached = True
    feats = _feats()
    # Rank 0 sees a class-2 object, rank 1 a class-2 and a class-0 one elsewhere.
    gts = [_gt(*ONE_GT), _gt([[10.0, 12.0, 42.0, 40.0], [30.0, 30.0, 62.0, 62.0]], [2, 0])]
    samples = _samples(gts[rank])
    local_sums = _positive_embedding_sums(head, feats, samples)
    head.loss(feats, samples)
    if means_update == 'manual':
        head.update_means_from_sums()
    all_means = all_gather(head.means)
    all_sums = all_gather(local_sums)
    if rank == 0:
        total = sum(all_sums)
        expected = torch.where(total.norm(dim=1, keepdim=True) > 0,
                               total / total.norm(dim=1, keepdim=True).clamp(min=1e-12), head.means)
        json.dump(dict(means=[m.tolist() for m in all_means], expected=expected.tolist(),
                       local_norms=[s.norm(dim=1).tolist() for s in all_sums]), open(out_path, 'w'))
    teardown_distributed()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
