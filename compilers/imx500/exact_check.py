"""The import's exact check: a quantization-simulating twin of the imported model run against
LiteRT's reference kernels on the calibration inputs.

The twin is the importer's own operator builders (compilers.imx500.ops) evaluated in float on
LiteRT's intermediate tensors (kept with experimental_preserve_all_tensors), each operator fed
exactly what LiteRT fed its own and its output compared with LiteRT's, before rounding, in steps
of that output's quantization (weights per channel and int32 biases as stored). A correct import
differs from the file only by the output's rounding (half a step) and the kernels' fixed-point
arithmetic, so the threshold is one step (BUILD_NOTES: "The exact import check"); a wrong weight,
bias or padding shows at its own operator, which the check names. Chained (each operator fed the
twin's own rounded values) the twin gives the distance at the outputs; the float model MCT gets
(no rounding) is compared at the outputs too, as information."""
import dataclasses
import pathlib
import typing

import numpy as np

from compilers.imx500.importer import file_context, run_operator
from zoo.errors import UsageError
from zoo.tflite import read_graph

MAX_STEPS = 1.0            # per operator, in its output's quantization steps
MAX_FLOAT_RELATIVE = 1e-4  # a float output, relative to its largest magnitude
MIN_FRAMES = 32
_CHUNK_BYTES = 256 << 20   # LiteRT's kept tensors held at once


@dataclasses.dataclass
class ExactCheck:
    """``max_steps``: the worst operator, teacher-forced twin against LiteRT, in its output's
    steps (an integer output's difference counts as over the threshold; a float output's is
    relative, in units of MAX_FLOAT_RELATIVE);
    ``first_failure``: the first operator over ``threshold_steps`` (None: passed);
    ``twin_output_steps``: the chained twin at the sensor's outputs; ``float_output_steps`` and
    ``float_mean_steps``: the float model (MCT's input) there, as information (None without one);
    ``by_operator``: the worst figure of each operator kind; ``kernel_notes``: operators where
    LiteRT's reference kernel disagrees with its optimized one, which the twin agrees with."""
    frames: int
    threshold_steps: float
    max_steps: float
    worst_operator: str
    first_failure: typing.Optional[str]
    twin_output_steps: float
    float_output_steps: typing.Optional[float]
    float_mean_steps: typing.Optional[float]
    by_operator: typing.Dict[str, float]
    kernel_notes: typing.Dict[str, str] = dataclasses.field(default_factory=dict)
    kernels: str = "LiteRT reference kernels (OpResolverType.BUILTIN_REF)"

    @property
    def passed(self):
        return self.first_failure is None


def reference_interpreter(content, kernels=None):
    """LiteRT with its reference kernels (the int8 arithmetic as specified; ``kernels``: another
    OpResolverType), every tensor kept."""
    import warnings
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    with warnings.catch_warnings():  # keeping all tensors is "for debugging": here it is the point
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=kernels or OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    return interpreter


def stored(tensor, value):
    """A float array as ``tensor`` stores it: quantized with its scale and zero point, or rounded
    into its integer type, or as float."""
    dtype = np.dtype(tensor.dtype)
    if dtype.kind == "f":
        return np.asarray(value, dtype)
    value = np.asarray(value, np.float64)
    if tensor.quantized:
        value = value / tensor.scale[0] + (tensor.zero_point or (0,))[0]
    info = np.iinfo(dtype)
    return np.clip(np.round(value), info.min, info.max).astype(dtype)


def real(tensor, value):
    """A stored array as the real numbers it holds (quantized: (q - zero point) * scale)."""
    if tensor.quantized and len(tensor.scale) == 1:
        zero_point = (tensor.zero_point or (0,))[0]
        return ((value.astype(np.float64) - zero_point) * tensor.scale[0]).astype(np.float32)
    return value.astype(np.float32) if np.dtype(value.dtype).kind in "fu" or tensor.quantized else value


def distance(tensor, got, expected):
    """How far float ``got`` is from LiteRT's stored ``expected`` in ``tensor``'s steps (before
    rounding, clipped to the integer range); integers (indices): 0 where equal, else more than
    MAX_STEPS (any difference fails); floats: relative error in units of MAX_FLOAT_RELATIVE.
    Returns the per-element array."""
    got = np.asarray(got, np.float64)
    if np.dtype(tensor.dtype).kind == "f":
        scale = max(float(np.max(np.abs(expected))), 1e-12) * MAX_FLOAT_RELATIVE / MAX_STEPS
        return np.abs(got - expected) / scale
    if not tensor.quantized:
        difference = np.abs(got - expected.astype(np.float64))
        return np.where(difference == 0, 0.0, MAX_STEPS + difference)
    info = np.iinfo(np.dtype(tensor.dtype))
    steps = np.clip(got / tensor.scale[0] + (tensor.zero_point or (0,))[0], info.min, info.max)
    return np.abs(steps - expected.astype(np.float64))


def input_batch(path, graph, names, inputs):
    """{input tensor index: float frames}, from a dict by input name or one array."""
    by_name = {name: index for index, name in names.items() if index in graph.inputs}
    if not isinstance(inputs, dict):
        if len(by_name) != 1:
            raise UsageError(f"{path} has {len(by_name)} inputs; give a dict of arrays by input name "
                             f"({', '.join(by_name)})")
        inputs = {next(iter(by_name)): inputs}
    missing = sorted(set(by_name) - set(inputs))
    if missing:
        raise UsageError(f"{path}: no values for input(s) {', '.join(missing)}")
    batch = {index: np.asarray(inputs[name], np.float32) for name, index in by_name.items()}
    frames = {len(value) for value in batch.values()}
    if len(frames) != 1 or min(frames) < MIN_FRAMES:
        raise UsageError(f"{path}: the exact check needs one batch of at least {MIN_FRAMES} frames per "
                         f"input, got {sorted(frames)}")
    return batch


def _litert_chunks(interpreter, graph, batch, needed):
    """(first frame, {tensor index: LiteRT's stored values for those frames}) for chunks of frames
    run one at a time (files fix batch 1), as many at once as _CHUNK_BYTES allows."""
    frames = len(next(iter(batch.values())))
    per_frame = sum(int(np.prod(graph.tensors[i].shape)) * np.dtype(graph.tensors[i].dtype).itemsize
                    for i in needed)
    chunk = max(1, min(frames, _CHUNK_BYTES // max(per_frame, 1)))
    for start in range(0, frames, chunk):
        kept = {index: [] for index in needed}
        for frame in range(start, min(frames, start + chunk)):
            for index, value in batch.items():
                interpreter.set_tensor(index, stored(graph.tensors[index], value[frame:frame + 1]))
            interpreter.invoke()
            for index in needed:
                kept[index].append(interpreter.get_tensor(index).copy())
        yield start, {index: np.concatenate(values) for index, values in kept.items()}


def _forced(ctx, op, kept):
    """Operator ``op`` of the twin fed LiteRT's own inputs: its distance from LiteRT's outputs."""
    import tensorflow as tf
    graph = ctx.graph
    ctx.values = {i: tf.constant(real(graph.tensors[i], kept[i])) for i in op.inputs
                  if i >= 0 and not graph.tensors[i].is_constant}
    outputs = run_operator(ctx, op, name=f"exact_check_op{op.index}")
    return max(float(distance(graph.tensors[o], np.asarray(v), kept[o]).max())
               for o, v in zip(op.outputs, outputs))


def _chained(ctx, operators, batch, start, count):
    """The twin run on its own values, each quantized output rounded as the file stores it."""
    import tensorflow as tf
    graph = ctx.graph
    ctx.values = {}
    for index, value in batch.items():
        tensor = graph.tensors[index]
        ctx.values[index] = tf.constant(real(tensor, stored(tensor, value[start:start + count])))
    for op in operators:
        for index, value in zip(op.outputs, run_operator(ctx, op, name=f"exact_twin_op{op.index}")):
            tensor = graph.tensors[index]
            if np.dtype(tensor.dtype).kind != "f":
                ctx.values[index] = tf.constant(real(tensor, stored(tensor, np.asarray(value))))
    return ctx.values


def _at_output(graph, index, value, expected):
    """Per element, how far ``value`` is from LiteRT's ``expected`` at output tensor ``index``, in
    steps of the quantization the file computes it at (that of the DEQUANTIZE's input for a float
    output the file dequantizes)."""
    tensor = graph.tensors[index]
    made_by = next((op for op in graph.operators if index in op.outputs), None)
    if not tensor.quantized and made_by is not None and made_by.name == "DEQUANTIZE":
        tensor = graph.tensors[made_by.inputs[0]]
        expected = stored(tensor, expected)
    return distance(tensor, np.asarray(value), expected)


def _float_distance(model, graph, batch, kept, start, outputs):
    """The float model's outputs against LiteRT's at ``outputs``, in steps (per element)."""
    feed = [batch[index][start:start + len(kept[outputs[0]])] for index in graph.inputs]
    got = model(feed[0] if len(feed) == 1 else feed, training=False)
    got = got if isinstance(got, (list, tuple)) else [got]
    return [_at_output(graph, index, value, kept[index]) for index, value in zip(outputs, got)]


def _needed(graph, operators, outputs=()):
    return sorted({i for op in operators for i in op.inputs + op.outputs
                   if i >= 0 and not graph.tensors[i].is_constant} | set(outputs))


def _second_opinion(ctx, operators, batch, content, worst):
    """The operators over the threshold, checked again against LiteRT's optimized (builtin)
    kernels: where those agree with the twin, LiteRT's reference kernel is the odd one out (its
    int8 SUM gives -1 everywhere, BUILD_NOTES) and the optimized figure counts; {name: note}."""
    from ai_edge_litert.interpreter import OpResolverType
    failing = [op for op in operators if worst[op.index] > MAX_STEPS]
    if not failing:
        return {}
    interpreter = reference_interpreter(content, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    optimized = {op.index: 0.0 for op in failing}
    for _, kept in _litert_chunks(interpreter, ctx.graph, batch, _needed(ctx.graph, failing)):
        for op in failing:
            optimized[op.index] = max(optimized[op.index], _forced(ctx, op, kept))
    notes = {}
    for op in failing:
        if optimized[op.index] <= MAX_STEPS:
            notes[f"operator {op.index} ({op.name})"] = (
                f"LiteRT's reference kernel is {worst[op.index]:.2f} steps from the twin, its optimized "
                f"kernel {optimized[op.index]:.2f}: the reference kernel is wrong here, the optimized figure "
                "counts")
            worst[op.index] = optimized[op.index]
    return notes


def exact_check(path, inputs, operators=None, outputs=None, content=None, float_model=None) -> ExactCheck:
    """The twin of TFLite ``path``'s import against LiteRT on ``inputs`` (at least MIN_FRAMES float
    frames; a dict by input name for several inputs). ``operators``/``outputs``: the part that
    was imported (compilers.imx500.partition; default all), ``content`` that part as a TFLite
    (partition.submodel; default the file); ``float_model``: the Keras model MCT gets."""
    graph = read_graph(path)
    operators = list(graph.operators if operators is None else operators)
    outputs = list(graph.outputs if outputs is None else outputs)
    content = content if content is not None else pathlib.Path(path).read_bytes()
    ctx, twin = file_context(path, graph, outputs), file_context(path, graph, outputs)
    batch = input_batch(path, graph, ctx.names, inputs)
    worst = {op.index: 0.0 for op in operators}
    twin_steps, float_steps = [], []
    for start, kept in _litert_chunks(reference_interpreter(content), graph, batch,
                                      _needed(graph, operators, outputs)):
        for op in operators:
            worst[op.index] = max(worst[op.index], _forced(ctx, op, kept))
        values = _chained(twin, operators, batch, start, len(kept[outputs[0]]))
        twin_steps += [float(_at_output(graph, i, values[i], kept[i]).max()) for i in outputs]
        if float_model is not None:
            float_steps += _float_distance(float_model, graph, batch, kept, start, outputs)
    notes = _second_opinion(ctx, operators, batch, content, worst)
    return _summary(operators, worst, len(next(iter(batch.values()))), (twin_steps, float_steps), notes)


def _summary(operators, worst, frames, output_steps, notes):
    twin_steps, float_steps = output_steps
    names = {op.index: f"operator {op.index} ({op.name})" for op in operators}
    failing = [op.index for op in operators if worst[op.index] > MAX_STEPS]
    by_operator = {}
    for op in operators:
        by_operator[op.name] = round(max(by_operator.get(op.name, 0.0), worst[op.index]), 4)
    top = max(worst, key=worst.get)
    return ExactCheck(
        frames=frames, threshold_steps=MAX_STEPS, max_steps=round(worst[top], 4), worst_operator=names[top],
        first_failure=f"{names[failing[0]]}: {worst[failing[0]]:.2f} steps" if failing else None,
        twin_output_steps=round(max(twin_steps), 4),
        float_output_steps=round(max(float(s.max()) for s in float_steps), 4) if float_steps else None,
        float_mean_steps=round(float(np.mean([s.mean() for s in float_steps])), 4) if float_steps else None,
        by_operator=by_operator, kernel_notes=notes)
