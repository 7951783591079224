"""Which TFLite Micro operators a model needs, and the MicroMutableOpResolver method that registers
each.

RESOLVER_METHODS is transcribed from TFLite Micro's tensorflow/lite/micro/micro_mutable_op_resolver.h
(the 2025 revision of tensorflow/tflite-micro: every ``TfLiteStatus AddXxx()``, with the
BuiltinOperator or custom name it registers). tests/test_mcu.py checks every entry against the
kernels compiled into the installed tflite-micro (its ``Register_<OP>`` symbols), so the table and
the interpreter that measures the arena agree. An operator not in the table has no TFLite Micro
kernel to register: compile() stops on it with one line."""
import collections
import dataclasses
import pathlib
import typing

from zoo.errors import UsageError

# BuiltinOperator name -> MicroMutableOpResolver method.
BUILTIN_METHODS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack",
    "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu", "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
# Custom operator name (the model's custom code) -> (method, the kernel's Register_ function).
CUSTOM_METHODS = {
    "TFLite_Detection_PostProcess": ("AddDetectionPostprocess", "DETECTION_POSTPROCESS"),
    "CIRCULAR_BUFFER": ("AddCircularBuffer", "CIRCULAR_BUFFER"),
    "SignalDelay": ("AddDelay", "DELAY"), "SignalEnergy": ("AddEnergy", "ENERGY"),
    "SignalFftAutoScale": ("AddFftAutoScale", "FFT_AUTO_SCALE"),
    "SignalFilterBank": ("AddFilterBank", "FILTER_BANK"),
    "SignalFilterBankLog": ("AddFilterBankLog", "FILTER_BANK_LOG"),
    "SignalFilterBankSquareRoot": ("AddFilterBankSquareRoot", "FILTER_BANK_SQUARE_ROOT"),
    "SignalFilterBankSpectralSubtraction": ("AddFilterBankSpectralSubtraction",
                                            "FILTER_BANK_SPECTRAL_SUBTRACTION"),
    "SignalFramer": ("AddFramer", "FRAMER"), "SignalIrfft": ("AddIrfft", "IRFFT"),
    "SignalOverlapAdd": ("AddOverlapAdd", "OVERLAP_ADD"), "SignalPCAN": ("AddPCAN", "PCAN"),
    "SignalRfft": ("AddRfft", "RFFT"), "SignalStacker": ("AddStacker", "STACKER"),
    "SignalWindow": ("AddWindow", "WINDOW"),
}
# What to do instead, for custom operators other tools leave in a model.
_COMPILED_FOR = {
    "edgetpu-custom-op": "the model is compiled for the Edge TPU; give the int8 model it was compiled from",
    "ethos-u": "the model is compiled by Vela for an Ethos-U NPU, which runs it only beside an Ethos-U "
               "driver; give the int8 model before Vela (or use compilers/ethosu.py)",
}


@dataclasses.dataclass
class OperatorUse:
    """One distinct operator of the model: its name (builtin name or custom code), how many times it
    occurs (in every subgraph), the index of its first occurrence and the resolver method."""
    name: str
    custom: bool
    count: int
    first_index: int
    method: str


def _subgraph_operators(path: pathlib.Path) -> typing.List[typing.Tuple[int, int, str, bool]]:
    """(subgraph, operator index, name, custom) of every operator of every subgraph (WHILE and IF
    bodies need their operators registered too). The file was checked by zoo.tflite.read_graph."""
    from ai_edge_litert import schema_py_generated as schema
    data = path.read_bytes()
    model = schema.Model.GetRootAsModel(data, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    found = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for i in range(subgraph.OperatorsLength()):
            code = model.OperatorCodes(subgraph.Operators(i).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = builtin == schema.BuiltinOperator.CUSTOM
            name = (code.CustomCode() or b"").decode("utf-8", "replace") if custom else names[builtin]
            found.append((s, i, name, custom))
    return found


def model_operators(path: "str | pathlib.Path") -> typing.List[OperatorUse]:
    """The model's distinct operators in order of first use; UsageError naming the first operator
    TFLite Micro has no kernel for, with its index, and what to do."""
    path = pathlib.Path(path)
    counts = collections.Counter()
    first = {}
    for subgraph, index, name, custom in _subgraph_operators(path):
        counts[name] += 1
        if name not in first:
            first[name] = (subgraph, index, custom)
    for name, (subgraph, index, custom) in first.items():
        known = name in CUSTOM_METHODS if custom else name in BUILTIN_METHODS
        if not known:
            where = f"operator {index}" + (f" of subgraph {subgraph}" if subgraph else "")
            kind = "custom operator" if custom else "builtin operator"
            hint = _COMPILED_FOR.get(name, "replace it in the model (TFLite Micro's MicroMutableOpResolver "
                                           "lists every operator it has a kernel for)")
            raise UsageError(f"{path}: {where} is the {kind} {name}, which TFLite Micro has no kernel for; "
                             f"{hint}")
    return [OperatorUse(name=name, custom=custom, count=counts[name], first_index=index,
                        method=CUSTOM_METHODS[name][0] if custom else BUILTIN_METHODS[name])
            for name, (_, index, custom) in first.items()]


def register_function(name: str, custom: bool) -> str:
    """The name of the TFLite Micro kernel function (``Register_<OP>``) behind an operator."""
    return f"Register_{CUSTOM_METHODS[name][1] if custom else name}"
