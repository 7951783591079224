"""The tflite-micro Python interpreter: the tensor arena it needs, measured, and the model run on it.

The arena is measured by TFLite Micro itself: the interpreter is built on a large arena with its
RecordingMicroAllocator (the Python interpreter's default), whose report gives the bytes the
allocation actually used (total = head + tail, the figure MicroInterpreter::arena_used_bytes()
returns on a board); a second interpreter is then built on an arena of exactly that size and run
once, which proves the figure is enough. TFLite Micro reports its errors through MicroPrintf on the
process's stderr (C level), so they are captured from file descriptor 2 and turned into one line
naming the failing operator."""
import contextlib
import dataclasses
import os
import re
import tempfile
import typing

from zoo.errors import UsageError

FIRST_ARENA = 64 * 1024 * 1024
LAST_ARENA = 1024 * 1024 * 1024  # larger arenas are no microcontroller's
ALIGNMENT_MARGIN = 16
_ALLOCATION = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_NODE = re.compile(r"Node (\S+) \(number (\d+)\) failed to (prepare|invoke)")
_TOO_SMALL = "missing:"
_SOURCE_PREFIX = re.compile(r"^\S+\.(cc|h)(:\d+)?\s+")  # "tensorflow/lite/micro/kernels/x.cc:146 "
REASON_CHARS = 160


class TflmError(Exception):
    """TFLite Micro refused the model; ``text`` is what it printed."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclasses.dataclass
class ArenaRecord:
    """The tensor arena, measured. ``bytes``: what the recording allocator used (head + tail), the
    size to give the arena; ``head_bytes``: the non-persistent part (activations and scratch,
    overlapped by TFLite Micro's memory planner); ``tail_bytes``: the persistent part (tensor and
    node structures, kernels' data). ``verified``: an interpreter on an arena of exactly ``bytes``
    allocated and ran. ``margin_bytes``: recommended on top (``margin_basis`` says why)."""
    bytes: int
    head_bytes: int
    tail_bytes: int
    verified: bool
    method: str
    margin_bytes: int
    margin_basis: str


@contextlib.contextmanager
def _captured_stderr():
    """Collects what native code writes to file descriptor 2 into the yielded list's one string."""
    saved = os.dup(2)
    text = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode("utf-8", "replace"))


def _call(function, *args):
    """``function(*args)``; TflmError with TFLite Micro's own words when it fails."""
    with _captured_stderr() as printed:
        try:
            return function(*args)
        except (RuntimeError, ValueError) as error:
            failure = error
    raise TflmError(printed[0].strip() or str(failure))


def interpreter(model_bytes: bytes, arena_size: int):
    """A TFLite Micro interpreter of ``model_bytes`` on an arena of ``arena_size`` bytes."""
    from tflite_micro.python.tflite_micro import runtime
    return _call(runtime.Interpreter.from_bytes, model_bytes, None, arena_size)


def _allocations(tflm) -> typing.Dict[str, int]:
    with _captured_stderr() as printed:
        tflm.print_allocations()
    return {kind: int(value) for kind, value in _ALLOCATION.findall(printed[0])}


def invoke(tflm, inputs: typing.Sequence, output_count: int) -> list:
    """Runs one frame from a fresh state (raw input arrays in the model's input order); the raw
    output arrays."""
    _call(tflm.reset)
    for index, array in enumerate(inputs):
        _call(tflm.set_input, array, index)
    _call(tflm.invoke)
    return [_call(tflm.get_output, index) for index in range(output_count)]


@dataclasses.dataclass
class Allocation:
    """A TFLite Micro interpreter that allocated its tensors, and the recording allocator's figures."""
    interpreter: object
    total: int
    head: int
    tail: int


def allocate(model_bytes: bytes) -> Allocation:
    """An interpreter of ``model_bytes`` on an arena large enough (doubled from FIRST_ARENA while
    TFLite Micro says it is too small); TflmError when it refuses the model."""
    size = FIRST_ARENA
    while True:
        try:
            tflm = interpreter(model_bytes, size)
            break
        except TflmError as error:
            if _TOO_SMALL not in error.text or size >= LAST_ARENA:
                raise
            size *= 2
    used = _allocations(tflm)
    return Allocation(tflm, used["total"], used["head"], used["tail"])


def arena_record(model_bytes: bytes, allocation: Allocation, probe: typing.Sequence,
                 output_count: int) -> ArenaRecord:
    """The arena ``model_bytes`` needs, measured as the module says; ``probe`` is one real frame (raw
    inputs) run on an arena of exactly the measured size."""
    exact = interpreter(model_bytes, allocation.total)
    invoke(exact, probe, output_count)
    return ArenaRecord(
        bytes=allocation.total, head_bytes=allocation.head, tail_bytes=allocation.tail, verified=True,
        method=("tflite-micro Python interpreter (reference kernels, 64-bit host): RecordingMicroAllocator's "
                "used bytes after AllocateTensors, then an interpreter on an arena of exactly that size "
                "allocated and ran one frame"),
        margin_bytes=0,
        margin_basis=(f"none when the arena is {ALIGNMENT_MARGIN}-byte aligned, as the generated model_ops.h "
                      f"declares it; else add {ALIGNMENT_MARGIN} bytes (TFLite Micro's micro_interpreter.h: "
                      f"the optimal arena is arena_used_bytes() + {ALIGNMENT_MARGIN} when tensor_arena is "
                      f"not {ALIGNMENT_MARGIN}-byte aligned). Optimized kernels (CMSIS-NN, ESP-NN) may "
                      "request scratch buffers the reference kernels measured here do not: confirm with "
                      "MicroInterpreter::arena_used_bytes() on the board"))


def refusal(path: str, tensors: typing.Sequence, error: TflmError) -> UsageError:
    """TFLite Micro's refusal of ``path`` as one UsageError line naming the operator, and the way on."""
    node = _NODE.search(error.text)
    lines = [line.strip() for line in error.text.splitlines() if line.strip()]
    reason = next((line for line in lines if not _NODE.search(line)), lines[0] if lines else "no detail")
    reason = _SOURCE_PREFIX.sub("", reason)
    reason = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + "..."
    if node is None:
        return UsageError(f"{path}: TFLite Micro cannot run it ({reason})")
    name, index, stage = node.group(1), int(node.group(2)), node.group(3)
    hint = ("TFLite Micro's kernels take int8, not the uint8 this model carries: convert it as a "
            "full-integer int8 model (TFLITE_BUILTINS_INT8, int8 inference input and output)"
            if _uint8_inside(tensors) else
            "TFLite Micro's kernel for this operator does not take it in this form; change the operator's "
            "types or options in the model")
    return UsageError(f"{path}: operator {index} ({name}) fails to {stage} in TFLite Micro ({reason}); "
                      f"{hint}")


def _uint8_inside(tensors: typing.Sequence) -> bool:
    """Whether any non-constant tensor of the model is uint8 (TF1-style quantization)."""
    return any(t.dtype == "uint8" and not t.is_constant for t in tensors)
