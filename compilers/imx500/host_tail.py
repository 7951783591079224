"""The part of a partitioned model that runs on the Raspberry Pi (compilers.imx500.partition):
written as host_tail.tflite, the file's own operators from the sensor's outputs on, and checked
here: LiteRT's sensor part followed by the tail must give exactly the file's outputs."""
import numpy as np

from compilers.imx500.exact_check import stored
from compilers.imx500.partition import submodel

TAIL_FILE = "host_tail.tflite"


def _tensor_record(tensor):
    return {"index": tensor.index, "name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype,
            "scale": tensor.scale[0] if tensor.quantized else None,
            "zero_point": (tensor.zero_point or (0,))[0] if tensor.quantized else None}


def _interpreter(content):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, feeds):
    """{tensor index: value} into ``interpreter``; its outputs by tensor index."""
    for index, value in feeds.items():
        interpreter.set_tensor(index, value)
    interpreter.invoke()
    return {d["index"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def _check(path, graph, partition, tail, batch):
    """How many of the frames in ``batch`` ({input index: float frames}) the sensor part then the
    tail compute exactly as the whole file does, in LiteRT; a sentence."""
    try:
        whole = _interpreter(open(path, "rb").read())
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        return f"not run: LiteRT here cannot run the whole file ({reason})"
    head = _interpreter(submodel(path, partition.sensor, graph.inputs, partition.sensor_outputs))
    tail_interpreter = _interpreter(tail)
    frames = len(next(iter(batch.values())))
    same = 0
    for frame in range(frames):
        feeds = {i: stored(graph.tensors[i], value[frame:frame + 1]) for i, value in batch.items()}
        expected, sent = _run(whole, feeds), _run(head, feeds)
        got = _run(tail_interpreter, {i: sent[i] for i in partition.host_inputs})
        same += all(np.array_equal(expected[i], got[i]) for i in graph.outputs if i in got)
    return f"exact (bit for bit) on {same} of {frames} inputs"


def write_tail(path, graph, partition, batch, folder):
    """Writes the host tail into ``folder``; its record for the report (``batch``: the check's
    inputs by input tensor index)."""
    tail = submodel(path, partition.host, partition.host_inputs, graph.outputs)
    (folder / TAIL_FILE).write_bytes(tail)
    operators = [graph.operators[i] for i in partition.host]
    return {"file": TAIL_FILE, "operators": [f"{op.index} {op.name}" for op in operators],
            "starts_at": {str(i): why for i, why in partition.reasons.items()},
            "custom_operators": sorted({op.name for op in operators if op.custom}),
            "inputs": [_tensor_record(graph.tensors[i]) for i in partition.host_inputs],
            "outputs": [_tensor_record(graph.tensors[i]) for i in graph.outputs],
            "check": _check(path, graph, partition, tail, batch)}
