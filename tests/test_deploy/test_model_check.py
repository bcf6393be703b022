"""ONNX files handed to mmext.deploy by an attacker, through ``open_session`` on both backends: graphs of
a few hundred bytes that a backend would make gigabytes of at load, tensors that declare more than they
store, external data outside the export directory or at a memory address. Each is refused before the
backend loads it, quickly and in little memory; genuine files (a small graph here, with and without
external data; the tiny models' exports in test_deployed_model.py) still open.
"""
import os
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip('onnxruntime')
pytest.importorskip('openvino')

from mmext.deploy import DeployError, DeployLimits, open_session  # noqa: E402
from mmext.deploy.limits import ENV_VAR  # noqa: E402

BACKENDS = ('onnxruntime', 'openvino')
STATIC = helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 8, 8])
DYNAMIC = helper.make_tensor_value_info('images', TensorProto.FLOAT, ['batch', 3, 'height', 'width'])
HUGE = 10**9  # elements: 4 GB of float32, 8 GB of int64


def graph_model(nodes, initializers=(), images=STATIC, sparse=()) -> onnx.ModelProto:
    """``y = images + max(c)``: ``nodes`` compute ``c`` (or an initializer is ``c``)."""
    nodes = list(nodes) + [helper.make_node('ReduceMax', ['c'], ['m'], keepdims=0),
                           helper.make_node('Add', ['images', 'm'], ['y'])]
    output = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, 'attack', [images], [output], initializer=list(initializers),
                              sparse_initializer=list(sparse))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)], ir_version=10)


def int64s(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def floats(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def declared(name, dims, raw_data=b'\0\0\0\0') -> TensorProto:
    """A float tensor that declares ``dims`` and stores ``raw_data``."""
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField('float_data')
    tensor.ClearField('dims')
    tensor.dims.extend(dims)
    tensor.raw_data = raw_data
    return tensor


def concat_of_shapes():
    """The input's shape vector concatenated with itself 200 times, four times over: 51 GB of int64
    from 3 KB of graph, whatever the input's size."""
    nodes = [helper.make_node('Shape', ['images'], ['s0'])]
    for level in range(1, 5):
        nodes.append(helper.make_node('Concat', [f's{level - 1}'] * 200, [f's{level}'], axis=0))
    nodes.append(helper.make_node('Cast', ['s4'], ['c'], to=TensorProto.FLOAT))
    return graph_model(nodes, images=DYNAMIC)


# name: (model, what the refusal names). Each graph's c (or its first computed value) is over 2 GB.
ATTACKS = {
    'constant-of-shape': (graph_model([helper.make_node('ConstantOfShape', ['shape'], ['c'])],
                                      [int64s('shape', [HUGE])]),
                          "ConstantOfShape node computes 'c' at load: 4000000000 bytes"),
    'expand': (graph_model([helper.make_node('Expand', ['one', 'shape'], ['c'])],
                           [floats('one', [1]), int64s('shape', [HUGE])]),
               "Expand node computes 'c' at load: 4000000000 bytes"),
    'range': (graph_model([helper.make_node('Range', ['start', 'limit', 'delta'], ['r']),
                           helper.make_node('Cast', ['r'], ['c'], to=TensorProto.FLOAT)],
                          [int64s('start', 0), int64s('limit', HUGE), int64s('delta', 1)]),
              "Range node computes 'r' at load: 8000000000 bytes"),
    'outer-sum': (graph_model([helper.make_node('Expand', ['one', 'rows'], ['column']),
                               helper.make_node('Expand', ['one', 'columns'], ['row']),
                               helper.make_node('Add', ['column', 'row'], ['c'])],
                              [floats('one', [1]),
                               int64s('rows', [40000, 1]), int64s('columns', [1, 40000])]),
                  "Add node computes 'c' at load: 6400000000 bytes"),
    'concat-of-shapes': (concat_of_shapes(), "Concat node computes 's4' at load: 51200000000 bytes"),
    'declared-initializer': (graph_model([], [declared('c', [HUGE])]),
                             r"initializer 'c': dims \[1000000000\] declare 4000000000 bytes"),
    'declared-constant': (graph_model([helper.make_node('Constant', [], ['c'], value=declared('v', [HUGE]))]),
                          r"attribute 'value' of the Constant node: dims \[1000000000\] declare 4000000000"),
    'sparse-initializer': (graph_model([], sparse=[helper.make_sparse_tensor(
        floats('c', [1]), int64s('c_indices', [0]), [HUGE // 2])]),
        r"sparse initializer 'c' \(values\): dims \[500000000\] declare 2000000000 bytes"),
}
# The attacks each backend turns into gigabytes without the checks. Both backends refuse a tensor that
# declares more than it stores themselves (the checks come first, with the limit); OpenVINO reads no
# sparse initializer.
AMPLIFIED = ('constant-of-shape', 'expand', 'range', 'outer-sum', 'concat-of-shapes')
LIVE = {'onnxruntime': AMPLIFIED + ('sparse-initializer',), 'openvino': AMPLIFIED}


def static_dim_product():
    """``ConstantOfShape(shape[1] * 333333333)`` of a dynamic input: the channel count is static, so
    OpenVINO folds 4 GB while compiling; ONNX shape inference does not resolve it."""
    nodes = [helper.make_node('Shape', ['images'], ['shape']),
             helper.make_node('Gather', ['shape', 'one'], ['channels']),
             helper.make_node('Mul', ['channels', 'factor'], ['size']),
             helper.make_node('ConstantOfShape', ['size'], ['c'])]
    return graph_model(nodes, [int64s('one', [1]), int64s('factor', [333333333])], images=DYNAMIC)


def save(model, path):
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope='module')
def attack_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('onnx_attacks')
    return {name: save(model, tmp / f'{name}.onnx') for name, (model, _) in ATTACKS.items()}


@pytest.fixture(scope='module')
def genuine(tmp_path_factory):
    """``y = images + max(c)`` with ``c`` a stored [1, 2, 3, 4]: the graph of the attacks, made harmless."""
    tmp = tmp_path_factory.mktemp('onnx_genuine')
    return save(graph_model([], [floats('c', [1, 2, 3, 4])]), tmp / 'genuine.onnx')


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', ATTACKS)
def test_attack_is_refused_naming_file_value_and_size(attack_files, name, backend):
    with pytest.raises(DeployError, match=f'{attack_files[name]}: .*{ATTACKS[name][1]}'):
        open_session(attack_files[name], backend)


def test_openvino_folding_of_static_dims_is_checked_by_openvino_shapes(tmp_path):
    """ONNX Runtime computes the value when run, not at load; OpenVINO would fold it while compiling."""
    path = save(static_dim_product(), tmp_path / 'static_dim_product.onnx')
    with pytest.raises(DeployError, match=r"OpenVINO computes 'c' \(Broadcast\) while compiling: 3999999996"):
        open_session(path, 'openvino')


def test_refusals_are_quick_and_small(attack_files, genuine, probe, tmp_path):
    """Each refusal takes under 5 s and raises the peak memory by under 100 MB, under a 3 GiB address
    space that the attacks need more than."""
    folded = save(static_dim_product(), tmp_path / 'static_dim_product.onnx')
    for backend in BACKENDS:
        files = [genuine, *attack_files.values()] + ([folded] if backend == 'openvino' else [])
        reports = probe(backend, files)
        assert reports[0]['outcome'] == 'loaded', reports[0]
        for report in reports[1:]:
            assert report['outcome'] == 'refused', report
            assert report['seconds'] < 5 and report['peak_rss_mb_increase'] < 100, report
        assert max(os.path.getsize(path) for path in files) < 4096


def test_attacks_are_live_without_the_checks(attack_files, genuine, probe, tmp_path):
    """Unchecked, the backend (loading, or on the first run) asks for the gigabytes, and fails for memory
    under the probe's 3 GiB address space."""
    folded = save(static_dim_product(), tmp_path / 'static_dim_product.onnx')
    for backend in BACKENDS:
        attacks = [folded] + [attack_files[name] for name in LIVE[backend]]
        reports = probe(f'unguarded-{backend}', [genuine, *attacks])
        assert reports[0]['outcome'] == 'loaded', reports[0]
        for report in reports[1:]:
            assert report['outcome'] == 'error' and re.search('allocate|bad_alloc', report['error']), report


@pytest.mark.parametrize('backend', BACKENDS)
def test_genuine_graph_opens_and_runs(genuine, backend):
    images = np.zeros((1, 3, 8, 8), np.float32)
    np.testing.assert_array_equal(open_session(genuine, backend)(images)['y'], images + 4)


def test_limit_is_raised_by_argument_or_environment(tmp_path, monkeypatch):
    """A ConstantOfShape of 4 MiB: refused under a 1 MiB limit, opened under the default."""
    model = graph_model([helper.make_node('ConstantOfShape', ['shape'], ['c'])], [int64s('shape', [2**20])])
    path = save(model, tmp_path / 'four_mib.onnx')
    with pytest.raises(DeployError, match='over the limit of 1048576 bytes'):
        open_session(path, limits=DeployLimits(max_tensor_bytes=2**20))
    open_session(path)
    monkeypatch.setenv(ENV_VAR, f'max_tensor_bytes={2**20}')
    with pytest.raises(DeployError, match='over the limit of 1048576 bytes'):
        open_session(path)
    monkeypatch.setenv(ENV_VAR, 'max_tensor_bytes=lots')
    with pytest.raises(DeployError, match=f'{ENV_VAR}=.*expected comma-separated name=integer'):
        open_session(path)


def external_copy(genuine, folder, **entries):
    """``genuine`` saved in ``folder`` with ``c`` in external data ``weights.bin`` beside it, then
    its external-data entries (location, offset, length) updated with ``entries``."""
    model = onnx.load(str(genuine))
    onnx.save_model(model, str(folder / 'model.onnx'), save_as_external_data=True, location='weights.bin',
                    size_threshold=0)
    model = onnx.load(str(folder / 'model.onnx'), load_external_data=False)
    fields = {e.key: e.value for e in model.graph.initializer[0].external_data}
    fields.update(entries)
    del model.graph.initializer[0].external_data[:]
    for key, value in fields.items():
        model.graph.initializer[0].external_data.add(key=key, value=value)
    return save(model, folder / 'model.onnx')


@pytest.mark.parametrize('backend', BACKENDS)
def test_external_data_inside_the_directory_opens(genuine, tmp_path, backend):
    images = np.zeros((1, 3, 8, 8), np.float32)
    path = external_copy(genuine, tmp_path)
    np.testing.assert_array_equal(open_session(path, backend)(images)['y'], images + 4)


@pytest.mark.parametrize('case, match', [
    ('absolute', r"external data location '/.*outside.bin': expected a file name relative"),
    ('parent', r"external data location '../outside.bin' is .*: not a regular file inside"),
    ('symlink', r"external data location 'link.bin' is .*outside.bin: not a regular file inside"),
    ('memory-address', r"external data at '\*/_ORT_MEM_ADDR_/\*', which the backends read as a memory"),
    ('length', r'external data of 12 bytes at offset 0 in weights.bin \(16 bytes\); its dims need 16'),
    ('offset', r'external data of 16 bytes at offset 8 in weights.bin \(16 bytes\)'),
])
@pytest.mark.parametrize('backend', BACKENDS)
def test_external_data_outside_the_directory_or_at_an_address_is_refused(genuine, tmp_path, case, match,
                                                                        backend):
    folder = tmp_path / 'export'
    folder.mkdir()
    outside = tmp_path / 'outside.bin'
    outside.write_bytes(np.array([1, 2, 3, 4], np.float32).tobytes())
    (folder / 'link.bin').symlink_to(outside)
    # The address tag as a path exists too: a check that only resolved files would let it through.
    (folder / '*' / '_ORT_MEM_ADDR_').mkdir(parents=True)
    (folder / '*' / '_ORT_MEM_ADDR_' / '*').write_bytes(outside.read_bytes())
    entries = dict(absolute=dict(location=str(outside)), parent=dict(location='../outside.bin'),
                   symlink=dict(location='link.bin'), length=dict(length='12'),
                   offset=dict(offset='8', length='16'),
                   **{'memory-address': dict(location='*/_ORT_MEM_ADDR_/*', offset='4096')})[case]
    path = external_copy(genuine, folder, **entries)
    with pytest.raises(DeployError, match=f"{path}: initializer 'c': {match}"):
        open_session(path, backend)


def subgraph_model():
    branch = helper.make_graph([helper.make_node('Identity', ['images'], ['c'])], 'branch', [],
                               [helper.make_tensor_value_info('c', TensorProto.FLOAT, None)])
    return graph_model([helper.make_node('If', ['flag'], ['c'], then_branch=branch, else_branch=branch)],
                       [numpy_helper.from_array(np.array(True), 'flag')])


def function_model():
    model = graph_model([helper.make_node('Twice', ['w'], ['c'], domain='local')],
                        [floats('w', [1])])
    model.functions.append(helper.make_function('local', 'Twice', ['x'], ['y'],
                                                [helper.make_node('Add', ['x', 'x'], ['y'])],
                                                [helper.make_opsetid('', 18)]))
    model.opset_import.append(helper.make_opsetid('local', 1))
    return model


def unsorted_model():
    model = graph_model([helper.make_node('Identity', ['w'], ['c'])],
                        [floats('w', [1])])
    model.graph.node.insert(0, model.graph.node.pop())  # the final Add first
    return model


@pytest.mark.parametrize('make, match', [
    (subgraph_model, r"the If node holds a subgraph"),
    (function_model, "it defines local functions"),
    (unsorted_model, r"the Add node reads 'm' before any node writes it"),
    (lambda: graph_model([helper.make_node('Identity', ['w'], ['c'])] * 2, [floats('w', [1])]),
     r"the Identity node writes 'c', which is already defined"),
    (lambda: graph_model([], [declared('c', [4], raw_data=b'\0' * 8)]),
     r"initializer 'c': dims \[4\] need 16 stored bytes, the file holds 8"),
    (lambda: graph_model([], [declared('c', [-4])]), r"initializer 'c': negative dims \[-4\]"),
])
def test_graphs_the_checks_cannot_vouch_for_are_refused(tmp_path, make, match):
    path = save(make(), tmp_path / 'model.onnx')
    with pytest.raises(DeployError, match=f'{path}: {match}'):
        open_session(path)


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'\xff' * 16)
    with pytest.raises(DeployError, match='not an ONNX model'):
        open_session(path, 'openvino')


def test_dequantized_weights_count_as_stored_but_growth_does_not(tmp_path):
    """An int8 export's weights, dequantized to float32 when OpenVINO compiles it: 4 bytes for each stored
    byte, bounded by the file, so a 1 MiB int8 weight opens under a 2 MiB limit although it becomes 4 MiB.
    Doubling its elements (Concat with itself) is growth, counted and refused (both checks would)."""
    weight = numpy_helper.from_array(np.ones(2**20, np.int8), 'q')
    scale, zero = floats('scale', 0.5), numpy_helper.from_array(np.array(0, np.int8), 'zero')
    dequantize = helper.make_node('DequantizeLinear', ['q', 'scale', 'zero'], ['c'])
    path = save(graph_model([dequantize], [weight, scale, zero]), tmp_path / 'int8_weight.onnx')
    limits = DeployLimits(max_tensor_bytes=2 * 2**20)
    open_session(path, 'openvino', limits=limits)
    grown = graph_model([helper.make_node('DequantizeLinear', ['q', 'scale', 'zero'], ['d']),
                         helper.make_node('Concat', ['d', 'd'], ['c'], axis=0)], [weight, scale, zero])
    with pytest.raises(DeployError, match=r"the Concat node computes 'c' at load: 8388608 bytes"):
        open_session(save(grown, tmp_path / 'grown.onnx'), 'openvino', limits=limits)
