"""DLDEHead under DDP: 2 CPU processes (gloo) through torchrun keep identical class means, equal to
the update from the sum of both ranks' positive embeddings."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).resolve().parents[1] / 'scripts/dlde_ddp_worker.py'


@pytest.mark.parametrize('means_update', ['batch', 'manual'])
def test_two_ranks_keep_equal_means(tmp_path, means_update):
    out = tmp_path / 'means.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
         str(WORKER), str(out), means_update],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rank0, rank1 = (torch.tensor(m) for m in result['means'])
    torch.testing.assert_close(rank0, rank1, rtol=0, atol=0)
    # From zero means one update gives the direction of the summed sums, whatever the mode.
    torch.testing.assert_close(rank0, torch.tensor(result['expected']))
    norms0, norms1 = result['local_norms']
    assert norms0[0] == 0 and norms1[0] > 0  # class 0 only on rank 1, yet rank 0 has its mean
    assert rank0[0].norm() == pytest.approx(1.0)
