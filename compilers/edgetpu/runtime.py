"""Running a compiled model on the Edge TPU through libedgetpu: the runtime apart from
compilation, as in pycoral. LiteRT and tflite-runtime load the delegate."""
import pathlib
import platform

from zoo.errors import UsageError
from zoo.plugins import Device
from zoo.tflite import load_delegate, make_interpreter

EDGETPU_LIBRARY = {"Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(platform.system(),
                                                                                 "libedgetpu.so.1")


def make_interpreter_on_tpu(path: "str | pathlib.Path", device: "str | None" = None, runtime: str = "litert"):
    """An allocated interpreter running compiled ``path`` on the Edge TPU through libedgetpu.

    ``device``: "usb", "usb:0", "pci:0", ... (None: the first Edge TPU found). Raises UsageError
    when the runtime library or the device is absent."""
    import ctypes
    try:  # loading it here first spares the user the runtime's own half-built-delegate noise
        ctypes.CDLL(EDGETPU_LIBRARY)
    except OSError as error:
        raise UsageError(f"Edge TPU runtime not found ({error}); install libedgetpu1-std from Coral's "
                         f"apt repository (coral-edgetpu-stable)") from None
    try:
        delegate = load_delegate(EDGETPU_LIBRARY, {"device": device} if device else {}, runtime)
    except ValueError as error:
        raise UsageError(f"no Edge TPU found{f' at {device}' if device else ''} ({error}); plug in the "
                         f"Coral accelerator and check that lsusb or lspci lists it") from None
    return make_interpreter(path, runtime=runtime, delegates=[delegate])


def _compiled(model: pathlib.Path) -> pathlib.Path:
    from zoo import artifacts
    return artifacts.compiler_output(model, "edgetpu") / f"{model.stem}_edgetpu.tflite"


DEVICE = Device(title="Coral Edge TPU", pattern=r"(usb|pci)(:\d+)?", usage="usb, pci, usb:N or pci:N",
                compiled=_compiled, is_compiled=lambda model: model.stem.endswith("_edgetpu"),
                interpreter=make_interpreter_on_tpu, compile_hint="compilers/edgetpu.py makes BUILD/edgetpu/")
