"""Which operators of a TFLite run on the IMX500 and which on the Raspberry Pi.

The sensor runs the network; an operator that MCT or imxconv-tf cannot take (integer index
arithmetic, a custom decoder, a TF1 resize) may still come at the end, as post-processing: the
graph is cut before it and the rest (the "host tail") runs on the Pi in LiteRT, from a TFLite
made of the file's own operators (so it computes exactly what the file does). Operators without
weights whose results only feed the tail go with it (the sensor then sends the smallest
tensors: DeepLab's 33x33 logits, not the 513x513 resize). An operator the sensor cannot take
that is followed by a layer with weights is in the middle of the network: refused, by name.
No TensorFlow here: the adapter partitions before any heavy work."""
import dataclasses
import pathlib
import typing

from compilers.imx500.importer import UnsupportedOperator, importable

# Operators whose weights make them the network's work, which the host tail must not take over.
WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL",
            "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "RNN", "SVDF",
            "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "EMBEDDING_LOOKUP"}
_INDEX_OPERATORS = {"ARG_MAX", "ARG_MIN"}  # integer outputs the chip makes (imxconv-tf's Argmax node)
WAY_FORWARD = ("export the model without it (or with it at the end, as post-processing), or give "
               "--keras a float Keras model of the same network")


@dataclasses.dataclass(frozen=True)
class Partition:
    """``sensor``/``host``: operator indices in file order; ``sensor_outputs``: the tensors the
    sensor sends (the host tail's inputs first, in the tail's input order, then graph outputs
    made on the sensor); ``host_inputs``: the tail's inputs; ``reasons``: why each operator that
    starts the tail (no earlier refused operator leads to it) cannot run on the sensor."""
    sensor: typing.Tuple[int, ...]
    host: typing.Tuple[int, ...]
    sensor_outputs: typing.Tuple[int, ...]
    host_inputs: typing.Tuple[int, ...]
    reasons: typing.Dict[int, str]

    def operators(self, graph, side):
        return [graph.operators[i] for i in (self.sensor if side == "sensor" else self.host)]


def sensor_refusal(graph, op):
    """Why the IMX500 toolchain cannot take ``op`` (None when it can): an operator the importer
    lacks, an integer computation, a gather at computed indices, or a TF1 resize, which
    imxconv-tf refuses (BUILD_NOTES: "IMX500 operators")."""
    if not importable(op):
        return (f"{op.name} is a custom operator" if op.custom else
                f"{op.name} has no Keras equivalent in the importer")
    output = graph.tensors[op.outputs[0]]
    integer = output.dtype.startswith(("int", "uint", "bool")) and not output.quantized
    if integer and op.name not in _INDEX_OPERATORS:
        return (f"{op.name} computes {output.dtype} values (indices), which the sensor's quantized network "
                "does not")
    if op.name == "GATHER" and not graph.tensors[op.inputs[1]].is_constant:
        return "GATHER at indices the network computes has no IMX500 equivalent"
    if op.name.startswith("RESIZE_") and (op.options.alignCorners or not op.options.halfPixelCenters):
        source, size = graph.tensors[op.inputs[0]].shape[1:3], tuple(graph.tensors[op.inputs[1]].values())
        if tuple(source) not in ((1, 1), tuple(size)):
            return (f"{op.name} with TF1 coordinates (align_corners={bool(op.options.alignCorners)}, no "
                    "half-pixel centres) is tf.compat.v1.image.resize, which imxconv-tf refuses")
    return None


def _consumers(graph):
    consumers = {}
    for op in graph.operators:
        for index in op.inputs:
            consumers.setdefault(index, set()).add(op.index)
    return consumers


def _downstream(graph, seeds, consumers):
    """``seeds`` and every operator that reads what they make, directly or not."""
    reached, frontier = set(seeds), list(seeds)
    while frontier:
        for index in graph.operators[frontier.pop()].outputs:
            for user in consumers.get(index, ()):
                if user not in reached:
                    reached.add(user)
                    frontier.append(user)
    return reached


def _host_tail(graph, seeds, consumers):
    """The seeds and everything after them, then the operators without weights whose outputs
    only feed that tail (never a graph output), pulled in until none is left."""
    host = _downstream(graph, seeds, consumers)
    changed = True
    while changed:
        changed = False
        for op in reversed(graph.operators):
            if op.index in host or op.name in WEIGHTED or any(i in graph.outputs for i in op.outputs):
                continue
            users = set().union(*(consumers.get(i, set()) for i in op.outputs))
            if users and users <= host:
                host.add(op.index)
                changed = True
    return host


def _starts(graph, reasons, consumers):
    """The refused operators that start the tail: those no earlier refused one leads to."""
    starts, reached = {}, set()
    for index in sorted(reasons):
        if index not in reached:
            starts[index] = reasons[index]
            reached |= _downstream(graph, [index], consumers)
    return starts


def _refuse_middle(graph, host, reasons):
    """UnsupportedOperator when the tail would take a layer with weights or a graph input."""
    first = graph.operators[min(reasons)]
    weighted = next((graph.operators[i] for i in sorted(host) if graph.operators[i].name in WEIGHTED), None)
    where = None
    if weighted is not None:
        where = ("it has weights itself" if weighted.index == first.index else
                 f"operator {weighted.index} ({weighted.name}), a layer with weights, comes after it")
    elif any(index in graph.inputs for i in host for index in graph.operators[i].inputs):
        where = "what comes after it reads the model's input"
    if where:
        raise UnsupportedOperator(
            f"{pathlib.Path(graph.path).name}: {reasons[first.index]} (operator {first.index}), and {where}: "
            f"it is in the middle of the network, not post-processing the Pi could run; {WAY_FORWARD}")


def partition(graph) -> Partition:
    """The sensor/host split of ``graph`` (zoo.tflite.read_graph); UnsupportedOperator (exit 2)
    naming the first operator the sensor cannot take when it is in the middle of the network."""
    reasons = {op.index: why for op in graph.operators if (why := sensor_refusal(graph, op))}
    consumers = _consumers(graph)
    host = _host_tail(graph, reasons, consumers) if reasons else set()
    reasons = _starts(graph, reasons, consumers)
    if host:
        _refuse_middle(graph, host, reasons)
    sensor = tuple(op.index for op in graph.operators if op.index not in host)
    made_on_sensor = {i for s in sensor for i in graph.operators[s].outputs}
    host_inputs = tuple(sorted({i for h in host for i in graph.operators[h].inputs if i in made_on_sensor}))
    sensor_outputs = host_inputs + tuple(i for i in graph.outputs
                                         if i in made_on_sensor and i not in host_inputs)
    return Partition(sensor, tuple(sorted(host)), sensor_outputs, host_inputs, reasons)


def submodel(path, operators, inputs, outputs) -> bytes:
    """The TFLite of ``path`` cut down to ``operators`` (indices) between tensors ``inputs`` and
    ``outputs``: the file's own operators, tensors, quantization and weights, so LiteRT computes
    on it exactly what it computes on the file. Tensors the part does not read lose their data
    and quantization, and the signature and metadata (of the whole model) dropped."""
    from ai_edge_litert.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(str(path))
    subgraph = model.subgraphs[0]
    subgraph.operators = [subgraph.operators[i] for i in operators]
    subgraph.inputs, subgraph.outputs = list(inputs), list(outputs)
    read = {i for op in subgraph.operators for i in list(op.inputs) + list(op.outputs) if i >= 0}
    kept = {subgraph.tensors[i].buffer for i in read} | {
        t.buffer for other in model.subgraphs[1:] for t in other.tensors or []}
    for index, tensor in enumerate(subgraph.tensors):
        if tensor.buffer not in kept:
            model.buffers[tensor.buffer].data = None
        if index not in read:
            tensor.quantization = None
    model.signatureDefs, model.metadata = [], []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
