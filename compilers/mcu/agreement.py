"""TFLite Micro's outputs against LiteRT's on the same real inputs, in output steps.

Both LiteRT resolvers are compared: its reference kernels (OpResolverType.BUILTIN_REF, the
kernels TFLite Micro's are ported from) and its default (optimized kernels with XNNPACK). Every
runtime starts each frame from a fresh state (variable tensors reset), so a stateful operator
compares like with like. An output step is one unit of the output's quantization: for a quantized
output its scale; for a float output made by DEQUANTIZE, the scale of the tensor it dequantizes
(the values are exact multiples of it); for an integer output without quantization, 1."""
import dataclasses
import typing

import numpy as np

REFERENCE, DEFAULT = "litert_reference", "litert_default"


@dataclasses.dataclass
class OutputAgreement:
    """One output over every frame. ``step``: an output step in the output's real units (None for a
    float output with no quantized source: then only ``max_abs`` compares); ``max_steps``,
    ``differing`` and ``max_abs`` per LiteRT resolver."""
    index: int
    name: str
    dtype: str
    shape: typing.List[int]
    step: typing.Optional[float]
    values: int
    max_steps: typing.Dict[str, typing.Optional[int]]
    differing: typing.Dict[str, int]
    max_abs: typing.Dict[str, float]


@dataclasses.dataclass
class Agreement:
    """TFLite Micro against each LiteRT resolver: ``bit_exact`` when every output value of every
    frame is equal, ``max_steps`` the largest difference over all outputs (None when an output has
    no step)."""
    data: str
    frames: int
    outputs: typing.List[OutputAgreement]
    bit_exact: typing.Dict[str, bool]
    max_steps: typing.Dict[str, typing.Optional[int]]
    basis: str


def _litert(path: str, resolver: str):
    from ai_edge_litert import interpreter as litert
    kind = litert.OpResolverType.BUILTIN_REF if resolver == REFERENCE else litert.OpResolverType.AUTO
    made = litert.Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=kind)
    made.allocate_tensors()
    return made


def run_litert(path: str, resolver: str, frames: typing.List[list]) -> typing.List[list]:
    """The raw outputs of LiteRT (``resolver``: REFERENCE or DEFAULT) for every frame."""
    made = _litert(path, resolver)
    inputs, outputs = made.get_input_details(), made.get_output_details()
    results = []
    for frame in frames:
        made.reset_all_variables()
        for details, array in zip(inputs, frame):
            made.set_tensor(details["index"], array)
        made.invoke()
        results.append([made.get_tensor(details["index"]).copy() for details in outputs])
    return results


def output_step(graph, tensor_index: int) -> typing.Optional[float]:
    """One output step of graph tensor ``tensor_index`` in real units (see the module)."""
    tensor = graph.tensors[tensor_index]
    if tensor.quantized:
        return tensor.scale[0]
    if np.dtype(tensor.dtype).kind in "iub":
        return 1.0
    for op in graph.operators:
        if op.name == "DEQUANTIZE" and tensor_index in op.outputs and graph.tensors[op.inputs[0]].quantized:
            return graph.tensors[op.inputs[0]].scale[0]
    return None


def _steps(ours, theirs, tensor, step):
    """(largest difference in steps or None, values that differ, largest real difference)."""
    a, b = np.asarray(ours), np.asarray(theirs)
    if np.dtype(tensor.dtype).kind in "iub":
        raw = np.abs(a.astype(np.int64) - b.astype(np.int64))
        real = raw * (tensor.scale[0] if tensor.quantized else 1.0)
        return int(raw.max(initial=0)), int(np.count_nonzero(raw)), float(real.max(initial=0.0))
    real = np.abs(a.astype(np.float64) - b.astype(np.float64))
    steps = None if step is None else int(np.rint(real / step).max(initial=0))
    return steps, int(np.count_nonzero(real)), float(real.max(initial=0.0))


def compare(graph, names: typing.List[str], ours: typing.List[list],
            theirs: typing.Dict[str, typing.List[list]], data: str) -> Agreement:
    """The Agreement of TFLite Micro's outputs ``ours`` with each LiteRT resolver's (``theirs``),
    output by output; ``names`` are the outputs' names."""
    outputs = []
    for position, tensor_index in enumerate(graph.outputs):
        tensor, step = graph.tensors[tensor_index], output_step(graph, tensor_index)
        mine = np.stack([frame[position] for frame in ours])
        found = {resolver: _steps(mine, np.stack([frame[position] for frame in frames]), tensor, step)
                 for resolver, frames in theirs.items()}
        outputs.append(OutputAgreement(
            index=position, name=names[position], dtype=tensor.dtype, shape=list(mine.shape[1:]), step=step,
            values=int(mine.size), max_steps={r: f[0] for r, f in found.items()},
            differing={r: f[1] for r, f in found.items()}, max_abs={r: f[2] for r, f in found.items()}))
    bit_exact = {r: all(o.differing[r] == 0 for o in outputs) for r in theirs}
    max_steps = {r: None if any(o.max_steps[r] is None for o in outputs) else
                 max(o.max_steps[r] for o in outputs) for r in theirs}
    return Agreement(data=data, frames=len(ours), outputs=outputs, bit_exact=bit_exact, max_steps=max_steps,
                     basis="TFLite Micro (tflite-micro Python interpreter) against LiteRT (ai-edge-litert) "
                           f"with its reference kernels ({REFERENCE}) and its default resolver ({DEFAULT}), "
                           "one frame at a time from a fresh state, on the frames named in data")
