"""The Edge TPU pre-flight's rules as data: one table of operator -> constraint -> the status the
compiler prints when the constraint is broken, each rule with its basis and source.

Google's edgetpu_compiler cannot be run here, so every rule says where it comes from:
  "documented"        Coral's published model requirements and operator table
                      (coral.ai/docs/edgetpu/models-intro, summarised in shared/edgetpu/README.md);
  "compiler message"  what the compiler itself printed or wrote: posted compile logs, maintainers'
                      answers on google-coral/edgetpu issues, the compiled twins in shared/;
  "inferred"          a guess fitted to such evidence; BUILD_NOTES.md says how it was fitted.
A prediction that rests on an inferred rule is reported as such.
"""
import typing

from compilers.edgetpu.report import RuleRecord

# The compiler's status words (its operation log, NAME_edgetpu.log).
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
SUBGRAPH = "More than one subgraph is not supported"
VERSION = "Operation version not supported"

DOCUMENTED, COMPILER_MESSAGE, INFERRED = "documented", "compiler message", "inferred"

_TABLE = "Coral operator table (coral.ai/docs/edgetpu/models-intro#supported-operations)"
_REQUIREMENTS = "Coral model requirements (coral.ai/docs/edgetpu/models-intro#model-requirements)"

# Operators in Coral's table -> positions of the inputs that must be compile-time constants
# (weights, biases, shapes, axes, paddings). TRANSPOSE is missing from the summary in
# shared/edgetpu/README.md but compiler 16 maps it: see _TRANSPOSE_EVIDENCE.
SUPPORTED = {
    "ADD": (), "SUB": (), "MUL": (), "MAXIMUM": (), "MINIMUM": (), "L2_NORMALIZATION": (),
    "LOGISTIC": (), "TANH": (), "RELU": (), "RELU6": (), "RELU_N1_TO_1": (), "QUANTIZE": (),
    "SPACE_TO_DEPTH": (), "EXPAND_DIMS": (1,), "SLICE": (1, 2), "SPLIT": (0,), "SUM": (1,),
    "TRANSPOSE_CONV": (0, 1, 3), "CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2),
    "FULLY_CONNECTED": (1, 2), "CONCATENATION": (), "MEAN": (1,), "PACK": (), "PAD": (1,),
    "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "RESHAPE": (1,), "RESIZE_BILINEAR": (1,),
    "RESIZE_NEAREST_NEIGHBOR": (1,), "SOFTMAX": (), "SQUEEZE": (), "STRIDED_SLICE": (1, 2, 3),
    "AVERAGE_POOL_2D": (), "MAX_POOL_2D": (), "LSTM": (), "UNIDIRECTIONAL_SEQUENCE_LSTM": (),
    "PRELU": (1,), "TRANSPOSE": (1,),
}
_OPTIONAL_INPUTS = {("CONV_2D", 2), ("DEPTHWISE_CONV_2D", 2), ("FULLY_CONNECTED", 2),
                    ("TRANSPOSE_CONV", 3), ("RESHAPE", 1)}
_TRANSPOSE_EVIDENCE = ("google-coral/edgetpu#193 (maintainer, 2021-08-03: compiler 16 supports Transpose) "
                       "and #433 (compiler 16 logs TRANSPOSE as 'otherwise supported'); compiler 14 "
                       "logged it 'Operation not supported' (#242)")

# The newest version of each operator that compiler 16 reads: those of TFLite 2.5
# (tensorflow/lite/tools/versioning/runtime_version.cc). Inferred from the compiler's date (mid
# 2021) and consistent with every refusal it is seen to print: CONV_2D v6 (TFLite 2.9, the
# grouped convolution; #631), QUANTIZE v3 (2.7; #879), TRANSPOSE_CONV v4 (#845), EXP v2
# (libedgetpu#71), each "Didn't find op for builtin opcode ..." then "Invalid model".
KNOWN_VERSIONS = {
    "ABS": 3, "ADD": 3, "ADD_N": 1, "ARG_MAX": 2, "ARG_MIN": 2, "AVERAGE_POOL_2D": 3,
    "BATCH_MATMUL": 4, "BATCH_TO_SPACE_ND": 3, "CAST": 1, "CEIL": 1, "CONCATENATION": 3, "CONV_2D": 5,
    "COS": 1, "DEPTH_TO_SPACE": 2, "DEPTHWISE_CONV_2D": 6, "DEQUANTIZE": 4, "DIV": 2, "ELU": 1,
    "EQUAL": 3, "EXP": 1, "EXPAND_DIMS": 1, "FILL": 3, "FLOOR": 1, "FLOOR_DIV": 2, "FLOOR_MOD": 1,
    "FULLY_CONNECTED": 9, "GATHER": 5, "GATHER_ND": 3, "GREATER": 2, "GREATER_EQUAL": 2,
    "HARD_SWISH": 1, "L2_NORMALIZATION": 2, "LEAKY_RELU": 2, "LESS": 2, "LESS_EQUAL": 2, "LOG": 1,
    "LOG_SOFTMAX": 2, "LOGICAL_AND": 1, "LOGICAL_NOT": 1, "LOGICAL_OR": 1, "LOGISTIC": 3, "LSTM": 4,
    "MAX_POOL_2D": 3, "MAXIMUM": 4, "MEAN": 3, "MINIMUM": 4, "MIRROR_PAD": 2, "MUL": 4, "NEG": 1,
    "NOT_EQUAL": 3, "ONE_HOT": 1, "PACK": 3, "PAD": 3, "PADV2": 3, "POW": 1, "PRELU": 1,
    "QUANTIZE": 2, "RANGE": 1, "REDUCE_MAX": 3, "REDUCE_MIN": 3, "REDUCE_PROD": 1, "RELU": 3,
    "RELU6": 3, "RELU_N1_TO_1": 1, "RESHAPE": 1, "RESIZE_BILINEAR": 4, "RESIZE_NEAREST_NEIGHBOR": 4,
    "REVERSE_V2": 3, "ROUND": 1, "RSQRT": 2, "SELECT": 2, "SELECT_V2": 1, "SHAPE": 1, "SIN": 1,
    "SLICE": 5, "SOFTMAX": 3, "SPACE_TO_BATCH_ND": 3, "SPACE_TO_DEPTH": 2, "SPLIT": 4, "SPLIT_V": 2,
    "SQRT": 1, "SQUARE": 1, "SQUARED_DIFFERENCE": 2, "SQUEEZE": 2, "STRIDED_SLICE": 5, "SUB": 5,
    "SUM": 2, "TANH": 3, "TILE": 2, "TOPK_V2": 2, "TRANSPOSE": 5, "TRANSPOSE_CONV": 3,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "UNPACK": 4, "WHERE": 1, "ZEROS_LIKE": 1,
}
VERSION_MEANING = {("CONV_2D", 6): "a grouped convolution (Conv2D groups > 1): use one Conv2D per group"}


# --- Tensor and operator facts the rules read ----------------------------------------------------


def _input(graph, op, position):
    """The tensor at input ``position`` of ``op`` (None when omitted or absent)."""
    index = op.inputs[position] if position < len(op.inputs) else -1
    return graph.tensors[index] if index >= 0 else None


def eight_bit(tensor):
    return tensor.dtype in ("int8", "uint8") and tensor.quantized


def _tensors(graph, op):
    return [graph.tensors[i] for i in op.inputs + op.outputs if i >= 0]


def _non_unit_dims(tensor):
    return sum(size > 1 for size in tensor.shape)


def _option(op, name, default):
    return getattr(op.options, name, default)


def _axes(graph, op):
    """The reduced or padded axes of ``op`` (its constant input 1), as non-negative indices."""
    rank = len(_input(graph, op, 0).shape)
    return {int(axis) % rank for axis in _input(graph, op, 1).values().reshape(-1)}


def _batch_untouched(graph, op):
    """False when ``op`` reduces over the batch of a 4-D tensor (MEAN, REDUCE_MAX/MIN)."""
    return len(_input(graph, op, 0).shape) != 4 or 0 not in _axes(graph, op)


# --- The constraints: (graph, op) -> True when the operator meets it -----------------------------


def _listed(graph, op):
    return not op.custom and op.name in SUPPORTED


def _version_readable(graph, op):
    return op.version <= KNOWN_VERSIONS.get(op.name, op.version)


def _quantize_from_eight_bit(graph, op):
    return eight_bit(_input(graph, op, 0))


def _tpu_data_types(graph, op):
    """8-bit quantized tensors, except constant int32/int64 biases, shapes and axes and an LSTM's
    16-bit cell state."""
    def fits(tensor):
        if tensor.dtype in ("int8", "uint8"):
            return tensor.quantized
        if tensor.is_variable:
            return tensor.dtype == "int16" and tensor.quantized
        return tensor.is_constant and tensor.dtype in ("int32", "int64")
    return all(fits(t) for t in _tensors(graph, op))


def _three_innermost_dims(graph, op):
    return all(all(size == 1 for size in t.shape[:-3]) for t in _tensors(graph, op) if not t.is_constant)


def _constant_parameters(graph, op):
    """Each parameter input is a constant; only biases and RESHAPE's shape (older files keep it in
    the options) may be omitted."""
    for position in SUPPORTED[op.name]:
        tensor = _input(graph, op, position)
        if tensor is None and (op.name, position) not in _OPTIONAL_INPUTS:
            return False
        if tensor is not None and not tensor.is_constant:
            return False
    return True


def _same_dilation(graph, op):
    return _option(op, "dilationWFactor", 1) == _option(op, "dilationHFactor", 1)


def _default_weights_format(graph, op):
    return _option(op, "weightsFormat", 0) == 0


def _one_dimensional_output(graph, op):
    return _non_unit_dims(graph.tensors[op.outputs[0]]) <= 1


def _no_fused_activation(graph, op):
    return _option(op, "fusedActivationFunction", 0) == 0


def _constant_only_as_zero_padding(graph, op):
    constants = [graph.tensors[i] for i in op.inputs if graph.tensors[i].is_constant]
    zero = all((c.values() == (c.zero_point or (0,))[0]).all() for c in constants)
    return not constants or (len(op.inputs) == 2 and zero)


def _z_reduction_depth_multiple_of_4(graph, op):
    source = _input(graph, op, 0)
    return len(source.shape) - 1 not in _axes(graph, op) or source.shape[-1] % 4 == 0


def _pack_not_on_batch(graph, op):
    return _option(op, "axis", 0) != 0


def _bilinear_on_grid(graph, op):
    """Integer upscales (align_corners: of the corner-to-corner spans). Fitted to the reference
    twins: movenet's 2x half-pixel resizes map, deeplabv3's 1x1 -> 33x33 align_corners does not."""
    source = _input(graph, op, 0)
    sizes = list(zip(source.shape[1:3], _input(graph, op, 1).values().tolist()))
    if _option(op, "alignCorners", False):
        return all(before > 1 and (after - 1) % (before - 1) == 0 for before, after in sizes)
    return all(after % before == 0 for before, after in sizes)


def _softmax_one_dimensional(graph, op):
    source = _input(graph, op, 0)
    elements = 1
    for size in source.shape:
        elements *= size
    return _non_unit_dims(source) <= 1 and elements <= 16000


def _squeeze_leading_ones(graph, op):
    shape = _input(graph, op, 0).shape
    axes = _option(op, "squeezeDims", None)
    axes = [int(a) % len(shape) for a in axes] if axes is not None and len(axes) else \
        [i for i, size in enumerate(shape) if size == 1]
    return all(all(size == 1 for size in shape[:axis + 1]) for axis in axes)


def _unit_strides(graph, op):
    return bool((_input(graph, op, 3).values() == 1).all())


def _no_ellipsis_or_new_axis(graph, op):
    return _option(op, "ellipsisMask", 0) == 0 and _option(op, "newAxisMask", 0) == 0


def _one_dimensional_alpha(graph, op):
    return _non_unit_dims(_input(graph, op, 1)) <= 1


def _lstm_weights_constant(graph, op):
    """Every input but the sequence and the state variables is a weight, bias or coefficient."""
    return all(graph.tensors[i].is_constant or graph.tensors[i].is_variable
               for i in op.inputs[1:] if i >= 0)


class Rule(typing.NamedTuple):
    id: str           # stable name, used in report.json and the tests
    ops: tuple        # the operators it applies to; None: every operator
    constraint: str   # what must hold
    status: str       # the compiler's status words when it does not
    basis: str        # DOCUMENTED, COMPILER_MESSAGE or INFERRED
    source: str
    holds: typing.Callable


_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")

# In order: the first rule an operator breaks gives its status. The rules from "version" on
# apply only to operators that passed "listed".
RULES = (
    Rule("dequantize", ("DEQUANTIZE",), "not a DEQUANTIZE (it outputs float)", UNSUPPORTED_TYPE,
         COMPILER_MESSAGE, "compile logs list DEQUANTIZE with this status (#490, #560, tensorflow#42024)",
         lambda graph, op: False),
    Rule("listed", None, "in Coral's operator table", NOT_SUPPORTED, DOCUMENTED,
         f"{_TABLE}; TRANSPOSE: {_TRANSPOSE_EVIDENCE}", _listed),
    Rule("version", None, "an operator version compiler 16 reads (those of TFLite 2.5)", VERSION,
         INFERRED, "see KNOWN_VERSIONS: refusals posted in #631, #879, #845, libedgetpu#71",
         _version_readable),
    Rule("quantize-from-8-bit", ("QUANTIZE",), "QUANTIZE of an 8-bit input (a float input's stays on "
         "the CPU)", LIMITATION, COMPILER_MESSAGE, "compile logs of float-input models "
         "(tiny_yolo_edgetpu.log, #342); the movenet twin", _quantize_from_eight_bit),
    Rule("data-types", None, "8-bit quantized tensors (int32 only as constant bias/shape)",
         UNSUPPORTED_TYPE, DOCUMENTED, _REQUIREMENTS, _tpu_data_types),
    # Also Coral's "3-dimensional input/output" of RESIZE_* and "no padding in batch dimension":
    # a 4-D tensor with a batch > 1 breaks this rule first.
    Rule("rank", None, "sizes > 1 only in the 3 innermost dimensions", RANK, DOCUMENTED, _REQUIREMENTS,
         _three_innermost_dims),
    Rule("constant-parameters", None, "weights, biases, shapes, axes and paddings are constants",
         LIMITATION, DOCUMENTED, _REQUIREMENTS, _constant_parameters),
    Rule("same-dilation", _CONVS, "the same dilation in x and y", LIMITATION, DOCUMENTED, _TABLE,
         _same_dilation),
    Rule("fc-weights-format", ("FULLY_CONNECTED",), "the default weights format", LIMITATION,
         DOCUMENTED, _TABLE, _default_weights_format),
    Rule("fc-1d-output", ("FULLY_CONNECTED",), "a one-dimensional output", LIMITATION, DOCUMENTED,
         _TABLE, _one_dimensional_output),
    Rule("no-fused-activation", ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION"),
         "no fused activation function", LIMITATION, DOCUMENTED, _TABLE, _no_fused_activation),
    Rule("concat-constant", ("CONCATENATION",), "a constant input only as all-zero padding of 2 inputs",
         LIMITATION, DOCUMENTED, _TABLE, _constant_only_as_zero_padding),
    Rule("not-on-batch", ("MEAN", "REDUCE_MAX", "REDUCE_MIN"), "no reduction over the batch",
         LIMITATION, DOCUMENTED, _TABLE, _batch_untouched),
    Rule("mean-z-depth", ("MEAN",), "a z (channel) reduction over a depth that is a multiple of 4",
         LIMITATION, DOCUMENTED, _TABLE, _z_reduction_depth_multiple_of_4),
    Rule("pack-not-on-batch", ("PACK",), "no packing along axis 0", LIMITATION, DOCUMENTED, _TABLE,
         _pack_not_on_batch),
    # RESIZE_NEAREST_NEIGHBOR has no such rule: compiler 16 maps EfficientDet-Lite0's 3x3 -> 5x5
    # nearest upsamplings (all 12 RESIZE_NEAREST_NEIGHBOR "Mapped to Edge TPU", #560).
    Rule("bilinear-grid", ("RESIZE_BILINEAR",), "an integer upscale (align_corners: of the corner "
         "spans)", LIMITATION, INFERRED, "fitted to the deeplabv3/movenet twins in shared/; Coral: "
         "'depending on input/output size ... to avoid loss in precision'", _bilinear_on_grid),
    Rule("softmax-1d", ("SOFTMAX",), "a 1-D input of at most 16,000 elements", LIMITATION, DOCUMENTED,
         _TABLE, _softmax_one_dimensional),
    Rule("squeeze-leading-ones", ("SQUEEZE",), "only leading 1s squeezed (no relayout)", LIMITATION,
         DOCUMENTED, _TABLE, _squeeze_leading_ones),
    Rule("unit-strides", ("STRIDED_SLICE",), "all strides 1", LIMITATION, DOCUMENTED, _TABLE,
         _unit_strides),
    Rule("slice-masks", ("STRIDED_SLICE",), "ellipsis and new-axis masks 0", LIMITATION, DOCUMENTED,
         _TABLE, _no_ellipsis_or_new_axis),
    Rule("prelu-1d-alpha", ("PRELU",), "a 1-D alpha (Keras PReLU shared_axes=[1, 2])", LIMITATION,
         DOCUMENTED, _TABLE, _one_dimensional_alpha),
    Rule("lstm-constant-weights", ("LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM"), "constant weights (one "
         "direction: BIDIRECTIONAL_SEQUENCE_LSTM is not listed)", LIMITATION, DOCUMENTED, _TABLE,
         _lstm_weights_constant),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}

# Not an operator's own rule: the compiler's single partition.
PARTITION = Rule("partition", None, "not fed by an operator that runs on the CPU after the TPU part",
                 SUBGRAPH, DOCUMENTED, "Coral: the compiler partitions once, at the first unsupported "
                 "operator; which branches stay on the TPU is fitted to the movenet twin",
                 lambda graph, op: True)


def broken_rule(graph, op):
    """The first rule ``op`` breaks on its own (before partitioning), or None when it can map."""
    for rule in RULES:
        if rule.ops is None or op.name in rule.ops:
            if not rule.holds(graph, op):
                return rule
    return None


def describe(rule):
    """The rule as report.json gives it."""
    return RuleRecord(constraint=rule.constraint, status=rule.status, basis=rule.basis, source=rule.source)
