"""Hand files to mmext.deploy one after the other and report, per file, one JSON line: how it ended, how
long it took and how much it raised the process's peak memory.

    python refusal_probe.py MODE FILE [FILE ...]

MODE: onnxruntime or openvino (``open_session`` on that backend), images (``load_images``), or
unguarded-onnxruntime, unguarded-openvino, unguarded-images: the backend or ``mmcv.imread`` without
mmext's checks (a session is run once on zeros), to show that the files attack something. Make the first
file a genuine one: it loads the libraries that a refusal would otherwise be charged with. The caller
sets the resource limits.
"""
import json
import sys

from peak_memory import measure


def unguarded_session(path, backend):
    """``backend`` on the ONNX file ``path`` as mmext's sessions open it, less the checks, run once on
    (1, 3, 8, 8) zeros."""
    import numpy as np
    images = np.zeros((1, 3, 8, 8), np.float32)
    if backend == 'openvino':
        import openvino as ov
        ov.Core().compile_model(path, 'CPU', {'PERFORMANCE_HINT': 'LATENCY'}).create_infer_request().infer(
            {0: images})
    else:
        import onnxruntime as ort
        ort.InferenceSession(path, providers=['CPUExecutionProvider']).run(None, {'images': images})


def loader(mode):
    import mmcv

    from mmext.deploy import open_session
    from mmext.deploy.deployed_model import load_images
    if mode == 'images':
        return lambda path: load_images([path])
    if mode == 'unguarded-images':
        return mmcv.imread
    if mode.startswith('unguarded-'):
        return lambda path: unguarded_session(path, mode.split('-', 1)[1])
    return lambda path: open_session(path, mode)


def main(mode, files):
    from mmext.deploy import DeployError
    load = loader(mode)
    for path in files:
        print(json.dumps(dict(file=path, **measure(lambda: load(path), DeployError))), flush=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
