"""Fixtures of the deployment tests."""
import json
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

TRAIN_ITERS = 20
PROBE = Path(__file__).parents[1] / 'scripts/refusal_probe.py'
ADDRESS_SPACE = 3 * 2**30


@pytest.fixture(scope='session')
def probe():
    """``probe(mode, files)``: refusal_probe.py's report of each file (dicts: outcome, error, seconds,
    peak_rss_mb_increase), from a subprocess under a 3 GiB address-space limit, so that an attack that
    gets through fails instead of exhausting the machine."""
    def run(mode, files):
        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

        proc = subprocess.run([sys.executable, str(PROBE), mode, *map(str, files)], capture_output=True,
                              text=True, timeout=300, preexec_fn=limit, cwd=PROBE.parents[2])
        reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
        assert [report['file'] for report in reports] == list(map(str, files)), proc.stderr[-3000:]
        return reports

    return run


@pytest.fixture(scope='session')
def bilevel_png():
    """``bilevel_png(width, height)``: the bytes of a black 1-bit PNG written by hand, row by row through
    zlib (20 KB at 10000 x 10000): a small file that decodes to width x height x 3 bytes."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    def png(width, height):
        row = bytes(1 + (width + 7) // 8)  # filter type 0, then 8 pixels a byte
        compressor = zlib.compressobj(9)
        pixels = b''.join(compressor.compress(row) for _ in range(height)) + compressor.flush()
        header = struct.pack('>IIBBBBB', width, height, 1, 0, 0, 0, 0)
        return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', pixels) + chunk(b'IEND', b'')

    return png


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
