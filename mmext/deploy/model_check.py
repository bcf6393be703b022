"""Checks of an ONNX file before a backend loads it (docs/deploy.md, "Security").

A backend computes at load what does not depend on the input's data: OpenVINO folds it into constants
while compiling, ONNX Runtime computes it on the first run. So a graph of a few hundred bytes can ask for
gigabytes (``ConstantOfShape`` of a constant ``[10**9]``), as can a tensor that declares more than it
stores, and external data can name any file. Against :class:`DeployLimits`' ``max_tensor_bytes``:

- every stored tensor (initializer, sparse initializer, tensor attribute) declares at most the limit and
  holds exactly the bytes its dims declare; external data lies in a regular file inside the export
  directory;
- every value a backend computes from constants, or from constants and static dimensions, has a size
  that shape inference determines, within the limit; together they are within it too.

Sizes come from the shapes the backend itself will know: ONNX shape inference for the file (ONNX Runtime
runs the same inference functions), and OpenVINO's own shape inference, which resolves more dimensions,
for the model OpenVINO read (:func:`check_openvino_model`). ONNX's data propagation is not used: it
computes the values it propagates (a ``Range`` of constants, ``Concat`` of repeated shape vectors), so
that a few kilobytes of graph exhaust the memory of the check itself. Local functions and subgraphs
(``If``, ``Loop``) are refused: mmext's exporter writes neither, and these checks do not look inside them.
"""
import math
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import onnx
from onnx import AttributeProto, TensorProto

from .spec import DeployError

# Where a value's data comes from, for the values that do not depend on the input's data: constants
# alone, or constants and the input's dimensions (static or not).
CONSTANT, SHAPE = 'constant', 'shape'
# Element types stored packed, several to a byte.
PACKED_BITS = {TensorProto.INT4: 4, TensorProto.UINT4: 4, TensorProto.FLOAT4E2M1: 4, TensorProto.INT2: 2,
               TensorProto.UINT2: 2, TensorProto.FLOAT6E2M3: 6, TensorProto.FLOAT6E3M2: 6}
# Shape inference reads the values of shape-like inputs (a few int64s); larger initializers are given
# to it by type and dims only, so that it does not copy the weights.
SHAPE_DATA_ELEMENTS = 1024
# An external-data location that ONNX Runtime and OpenVINO read as a memory address (the offset), not a
# file name.
MEMORY_ADDRESS_LOCATION = '*/_ORT_MEM_ADDR_/*'

Dims = Optional[Tuple]  # ints for static dimensions, None for unknown or symbolic ones; None: unknown rank


def refuse(path: Path, problem: str) -> DeployError:
    return DeployError(f'{path}: {problem}; mmext.deploy does not load it (docs/deploy.md, "Security")')


def describe_node(node: onnx.NodeProto) -> str:
    return f'node {node.name!r} ({node.op_type})' if node.name else f'the {node.op_type} node'


def describe_bytes(count: int) -> str:
    return f'{count} bytes ({count / 2**20:.1f} MiB)'


def over_limit(what: str, size: int, total: int, max_bytes: int) -> Optional[str]:
    """Why ``what``, a value of ``size`` bytes computed at load that brings the values computed at load
    to ``total``, is refused; None if both are within ``max_bytes``."""
    if size > max_bytes:
        return f'{what}: {describe_bytes(size)}, over the limit of {describe_bytes(max_bytes)}'
    if total > max_bytes:
        return f'{what}: {describe_bytes(size)}, bringing the values computed at load to ' \
               f'{describe_bytes(total)}, over the limit of {describe_bytes(max_bytes)}'
    return None


def element_bytes(data_type: int, count: int) -> int:
    """Bytes of ``count`` elements of ONNX type ``data_type`` as stored (packed types several to a byte);
    a ``KeyError`` for an unknown type."""
    if data_type in PACKED_BITS:
        return math.ceil(count * PACKED_BITS[data_type] / 8)
    if data_type == TensorProto.UNDEFINED:
        raise KeyError(data_type)
    return count * onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize


def stored_tensors(graph: onnx.GraphProto) -> Iterator[Tuple[str, TensorProto, Tuple[int, ...]]]:
    """``(where, tensor, dense dims)`` of every tensor ``graph`` stores: initializers, the values and
    indices of sparse initializers (dense dims: the sparse tensor's), and tensor attributes of nodes."""
    for tensor in graph.initializer:
        yield f'initializer {tensor.name!r}', tensor, tuple(tensor.dims)
    sparse = [(f'sparse initializer {s.values.name!r}', s) for s in graph.sparse_initializer]
    for node in graph.node:
        for attribute in node.attribute:
            where = f'attribute {attribute.name!r} of {describe_node(node)}'
            tensors = list(attribute.tensors) + ([attribute.t] if attribute.HasField('t') else [])
            for tensor in tensors:
                yield where, tensor, tuple(tensor.dims)
            sparse += [(where, s) for s in attribute.sparse_tensors]
            if attribute.HasField('sparse_tensor'):
                sparse.append((where, attribute.sparse_tensor))
    for where, tensor in sparse:  # the backends make them dense
        yield f'{where} (values)', tensor.values, tuple(tensor.dims)
        yield f'{where} (indices)', tensor.indices, tuple(tensor.indices.dims)


def stored_bytes(tensor: TensorProto, count: int) -> Tuple[int, int]:
    """(bytes or elements ``tensor`` holds in its protobuf fields, what its ``count`` elements need), in
    the unit of the field that holds them: ``raw_data`` bytes, or a typed field's elements."""
    if tensor.raw_data:
        return len(tensor.raw_data), element_bytes(tensor.data_type, count)
    field = onnx.helper.tensor_dtype_to_field(tensor.data_type)
    if tensor.data_type in PACKED_BITS:
        needed = element_bytes(tensor.data_type, count)  # one packed byte per int32
    elif tensor.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        needed = 2 * count
    else:
        needed = count
    return len(getattr(tensor, field)), needed


def check_external(tensor: TensorProto, needed: int, base: Path, root: Path) -> Optional[str]:
    """What is wrong with ``tensor``'s external data, if anything: its file must be a regular file inside
    ``root`` (resolved from ``base``, the ONNX file's directory, as the backends resolve it), and
    ``offset`` and ``length`` must select exactly ``needed`` bytes of it."""
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get('location', '')
    if len(entries) != len(tensor.external_data) or tensor.raw_data:
        return 'external data with repeated keys or with raw data as well'
    if location == MEMORY_ADDRESS_LOCATION:
        return f'external data at {location!r}, which the backends read as a memory address'
    if not location or '\0' in location or Path(location).is_absolute():
        return f'external data location {location!r}: expected a file name relative to the ONNX file'
    try:
        path = (base / location).resolve()
    except (OSError, RuntimeError) as error:
        return f'external data location {location!r} does not resolve ({error})'
    if not path.is_relative_to(root) or not path.is_file():
        return f'external data location {location!r} is {path}: not a regular file inside {root}'
    if not all(entries.get(key, '0').isdigit() for key in ('offset', 'length')):
        return f'external data offset / length {entries.get("offset")!r} / {entries.get("length")!r}'
    offset, file_size = int(entries.get('offset', 0)), path.stat().st_size
    length = int(entries.get('length', file_size - offset))
    if length != needed or offset + length > file_size:
        return (f'external data of {length} bytes at offset {offset} in {path.name} ({file_size} bytes); '
                f'its dims need {needed}')
    return None


def tensor_problem(tensor: TensorProto, dims: Tuple[int, ...], base: Path, root: Path,
                   max_bytes: int) -> Optional[str]:
    """What is wrong with a stored tensor of dense ``dims``, if anything (see the module docstring)."""
    if any(d < 0 for d in dims) or any(d < 0 for d in tensor.dims):
        return f'negative dims {list(dims)}'
    try:
        declared = element_bytes(tensor.data_type, math.prod(dims))
        if declared > max_bytes:
            return f'dims {list(dims)} declare {describe_bytes(declared)}, over the limit of ' \
                   f'{describe_bytes(max_bytes)}'
        if tensor.data_location == TensorProto.EXTERNAL:
            return check_external(tensor, element_bytes(tensor.data_type, math.prod(tensor.dims)), base, root)
        held, needed = stored_bytes(tensor, math.prod(tensor.dims))
    except KeyError:
        return f'element type {tensor.data_type}'
    if held != needed:
        unit = 'bytes' if tensor.raw_data else 'elements'
        return f'dims {list(tensor.dims)} need {needed} stored {unit}, the file holds {held}'
    return None


def check_structure(path: Path, model: onnx.ModelProto) -> None:
    """Refuse what mmext's exporter does not write and the checks do not look into: local functions,
    subgraphs, and nodes out of order (a value read before a node writes it) or writing a value twice."""
    if model.functions:
        raise refuse(path, f'it defines local functions ({model.functions[0].name!r}, ...)')
    graph = model.graph
    defined = {value.name for value in graph.input} | {t.name for t in graph.initializer} | \
        {s.values.name for s in graph.sparse_initializer}
    for node in graph.node:
        if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
            raise refuse(path, f'{describe_node(node)} holds a subgraph')
        unknown = [name for name in node.input if name and name not in defined]
        if unknown:
            raise refuse(path, f'{describe_node(node)} reads {unknown[0]!r} before any node writes it')
        for name in filter(None, node.output):
            if name in defined:
                raise refuse(path, f'{describe_node(node)} writes {name!r}, which is already defined')
            defined.add(name)


def shape_inference_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` for shape inference: initializers of more than :data:`SHAPE_DATA_ELEMENTS` elements
    (and sparse ones) become graph inputs of their type and dims, so that their data is not copied."""
    graph = model.graph
    names = {value.name for value in graph.input}
    kept, typed = [], []
    for tensor in graph.initializer:
        if math.prod(tensor.dims) <= SHAPE_DATA_ELEMENTS and tensor.data_location != TensorProto.EXTERNAL:
            kept.append(tensor)
        elif tensor.name not in names:
            typed.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims))
    typed += [onnx.helper.make_tensor_value_info(s.values.name, s.values.data_type, s.dims)
              for s in graph.sparse_initializer if s.values.name not in names]
    skeleton = onnx.helper.make_graph(graph.node, graph.name, list(graph.input) + typed, graph.output,
                                      initializer=kept, value_info=graph.value_info)
    return onnx.helper.make_model(skeleton, ir_version=model.ir_version, opset_imports=model.opset_import)


def inferred_dims(path: Path, model: onnx.ModelProto) -> Dict[str, Tuple[int, Dims]]:
    """``{value name: (element type, dims)}`` from ONNX shape inference (without data propagation, see the
    module docstring); a failure (an inconsistent graph) is a :class:`DeployError`."""
    try:
        inferred = onnx.shape_inference.infer_shapes(shape_inference_input(model), strict_mode=True)
    except Exception as error:  # InferenceError, ValidationError or whatever else the graph provokes
        raise refuse(path, f'ONNX shape inference fails ({str(error)[:300]})') from None
    values = {}
    graph = inferred.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor_type = value.type.tensor_type
        dims = None
        if tensor_type.HasField('shape'):
            dims = tuple(d.dim_value if d.HasField('dim_value') else None for d in tensor_type.shape.dim)
        values[value.name] = tensor_type.elem_type, dims
    for tensor in graph.initializer:
        values[tensor.name] = tensor.data_type, tuple(tensor.dims)
    return values


def node_origin(node: onnx.NodeProto, origins: Dict[str, str], values: Dict[str, Tuple[int, Dims]]):
    """:data:`CONSTANT`, :data:`SHAPE` or None (depends on the input's data) for ``node``'s outputs.

    ``Shape`` and ``Size`` read only dimensions: constant where those are static, as both backends fold them.
    """
    if node.op_type in ('Shape', 'Size') and node.domain in ('', 'ai.onnx') and node.input:
        dims = values.get(node.input[0], (0, None))[1]
        if dims is not None and node.op_type == 'Shape':
            attributes = {a.name: a.i for a in node.attribute}
            dims = dims[attributes.get('start', 0):attributes.get('end', len(dims))]
        return CONSTANT if dims is not None and None not in dims else SHAPE
    sources = [origins.get(name) for name in node.input if name]
    if not all(sources):
        return None
    return SHAPE if SHAPE in sources else CONSTANT


def computed_bytes(name: str, values: Dict[str, Tuple[int, Dims]]) -> Optional[int]:
    """Bytes of a computed value by its inferred type and dims; None where they are unknown (strings:
    their length is not in the dims)."""
    data_type, dims = values.get(name, (TensorProto.UNDEFINED, None))
    if dims is None or None in dims or data_type == TensorProto.STRING:
        return None
    try:
        return element_bytes(data_type, math.prod(dims))
    except KeyError:
        return None


def check_computed_values(path: Path, model: onnx.ModelProto, max_bytes: int) -> None:
    """Refuse a value computed from constants (or constants and static dims) whose size is unknown or
    over ``max_bytes``, a value from constants and dynamic dims of a known size over it, and all such
    values together over it. ``model`` has passed :func:`check_structure`.

    A value of a single-output node with no more elements than a stored tensor it is computed from
    (element-wise steps, such as the dequantization of an int8 export's weights) is bounded by the file
    and not counted, as in :func:`check_openvino_model`.
    """
    graph = model.graph
    values = inferred_dims(path, model)
    origins = {t.name: CONSTANT for t in graph.initializer}
    origins.update({s.values.name: CONSTANT for s in graph.sparse_initializer})
    stored_elements = {t.name: math.prod(t.dims) for t in graph.initializer}
    total = 0
    for node in graph.node:
        where = describe_node(node)
        origin = node_origin(node, origins, values)
        for name in filter(None, node.output):
            if origin is None:
                continue
            origins[name] = origin
            if node.op_type == 'Constant':  # stored: checked with the other stored tensors
                continue
            dims = values.get(name, (None, None))[1]
            largest_stored = max((stored_elements.get(i, 0) for i in node.input), default=0)
            if origin == CONSTANT and len(node.output) == 1 and dims is not None and None not in dims \
                    and 0 < math.prod(dims) <= largest_stored:
                stored_elements[name] = largest_stored
                continue
            size = computed_bytes(name, values)
            if size is None and origin == CONSTANT:
                raise refuse(path, f'{where} computes {name!r} from constants at load, and its size is '
                                   'unknown to ONNX shape inference')
            if size is None:
                continue
            total += size
            problem = over_limit(f'{where} computes {name!r} at load', size, total, max_bytes)
            if problem:
                raise refuse(path, problem)


def check_onnx(path: Path, root: Path, max_bytes: int) -> None:
    """Raise :class:`DeployError` naming ``path`` and the tensor or node unless the ONNX file passes the
    checks of the module docstring. ``root``: the directory external data must lie in."""
    path, root = Path(path), Path(root).resolve()
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError, or what onnx makes of a truncated file
        raise refuse(path, f'not an ONNX model ({type(error).__name__}: {str(error)[:200]})') from None
    check_structure(path, model)
    for where, tensor, dims in stored_tensors(model.graph):
        problem = tensor_problem(tensor, dims, path.parent, root, max_bytes)
        if problem:
            raise refuse(path, f'{where}: {problem}')
    check_computed_values(path, model, max_bytes)


def check_openvino_model(path: Path, model, max_bytes: int) -> None:
    """Refuse what OpenVINO would fold into constants of unknown size or over ``max_bytes`` (each, and
    all together) when compiling ``model``, the ov.Model it read from ``path``: its nodes that depend on
    no ``Parameter``'s data, with the shapes OpenVINO's own shape inference gave them.

    ``ShapeOf`` counts as constant where its input's shape is static; the file's constants (``Constant``)
    were checked in the ONNX file. A value with no more elements than a stored constant it is computed
    from (element-wise steps, such as the dequantization of an int8 export's weights) is bounded by the
    file, at most 8 bytes per stored element, and is not counted: the limit is on what a small file
    makes a backend build.
    """
    origins, total = {}, 0
    stored_elements = {}  # name -> elements, of the file's constants and of what keeps to their size
    for node in model.get_ordered_ops():
        kind, where = node.get_type_name(), f'{node.get_friendly_name()!r} ({node.get_type_name()})'
        if kind == 'Constant':
            origins[node.get_name()] = CONSTANT
            stored_elements[node.get_name()] = math.prod(node.get_output_shape(0))
        if kind in ('Constant', 'Parameter', 'Result'):  # a Result is its input, counted there
            continue
        sources = [origins.get(value.get_node().get_name()) for value in node.input_values()]
        if kind == 'ShapeOf':
            sources = [CONSTANT if node.get_input_partial_shape(0).is_static else SHAPE]
        if not all(sources):
            continue
        origin = SHAPE if SHAPE in sources else CONSTANT
        origins[node.get_name()] = origin
        largest_stored = max((stored_elements.get(value.get_node().get_name(), 0)
                              for value in node.input_values()), default=0)
        if node.get_output_size() == 1 and node.get_output_partial_shape(0).is_static and \
                0 < math.prod(node.get_output_shape(0)) <= largest_stored:
            stored_elements[node.get_name()] = largest_stored
            continue
        for output in node.outputs():
            shape = output.get_partial_shape()
            if not shape.is_static:
                if origin == CONSTANT:
                    raise refuse(path, f'OpenVINO computes {where} from constants while compiling, and its '
                                       f'shape is {shape}')
                continue
            size = math.ceil(math.prod(shape.to_shape()) * output.get_element_type().bitwidth / 8)
            total += size
            problem = over_limit(f'OpenVINO computes {where} while compiling', size, total, max_bytes)
            if problem:
                raise refuse(path, problem)
