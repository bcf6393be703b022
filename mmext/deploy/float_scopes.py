"""The steps of an export that stay in floating point under int8 and bf16, found from the graph.

torch's exporter records on every ONNX node the module classes it came from
(``pkg.torch.onnx.class_hierarchy``). The steps that the heads compute themselves, outside their learned
layers, keep float32 (:data:`FLOAT_SCOPES`): int8 quantization leaves them out
(:mod:`mmext.deploy.quantize`) and OpenVINO bf16 keeps them in fp32 (:mod:`mmext.deploy.backends`).
"""
import ast
from typing import List

# By the module class whose code computes them: 'all' keeps the whole module, 'own' the ops the module
# writes itself (its learned submodules are reduced). The export graphs call the heads' predict and
# post-processing outside any submodule's forward, so those steps are the graph's own ops.
FLOAT_SCOPES = {
    'SpatialGather': ('all', "OCR's spatial softmax and gather: weights of order 1 / (H * W)"),
    'ObjectAttentionBlock': ('own', "OCR's pixel-region similarity and softmax"),
    'SegmentorGraph': ('own', "normalisation and the heads' predict: PointRend's uncertainty, top-k, "
                              "point coordinates and sampling, Net2Vec's intersect decoding, resizing"),
    'DetectorGraph': ('own', "normalisation, anchor scoring (DLDE's cosine to the class means and "
                             'modified sigmoid), box decoding, score threshold and NMS'),
}


def module_classes(node) -> List[str]:
    """The class names of the modules ONNX ``node`` was exported from, outermost first, ending with the op
    itself (e.g. ``aten.bmm.default``); empty for a file without the exporter's metadata."""
    for prop in node.metadata_props:
        if prop.key == 'pkg.torch.onnx.class_hierarchy':
            return [name.rsplit('.', 1)[-1] for name in ast.literal_eval(prop.value)]
    return []


def float_nodes(model) -> List[str]:
    """Names of the nodes of the ONNX ``model`` that :data:`FLOAT_SCOPES` keeps in floating point; the
    class before the op is the innermost module, whose 'own' ops these are."""
    names = []
    for node in model.graph.node:
        modules = module_classes(node)[:-1]
        whole = any(FLOAT_SCOPES.get(name, ('',))[0] == 'all' for name in modules)
        own = bool(modules) and FLOAT_SCOPES.get(modules[-1], ('',))[0] == 'own'
        if whole or own:
            names.append(node.name)
    return names
