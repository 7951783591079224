"""What the layers above the zoo (the compiler targets under compilers/) add to it, found through
the installed package's entry points (setup.cfg), so that no module of zoo/ names a target:

- ``zoo.devices``: accelerators `zoo predict --device` runs a compiled model on (a Device each);
- ``zoo.packages``: file patterns that mark a folder as a chip package, which no command replaces.

A checkout used without `pip install -e .` (or `make venv`) has no entry points: --device then says
so, and packages are still known by their output marker."""
import dataclasses
import functools
import importlib.metadata
import pathlib
import re
import typing

from zoo.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Device:
    """An accelerator that runs compiled TFLite files through a runtime delegate. ``pattern``: the
    --device values it takes; ``compiled``: the compiled file of a build's int8 model (a path that
    may not exist); ``is_compiled``: whether a file was compiled for it; ``interpreter``:
    (file, device, runtime) -> an allocated interpreter, UsageError when the device is absent."""
    title: str
    pattern: str
    usage: str
    compiled: typing.Callable[[pathlib.Path], pathlib.Path]
    is_compiled: typing.Callable[[pathlib.Path], bool]
    interpreter: typing.Callable[[pathlib.Path, str, str], object]
    compile_hint: str


@functools.lru_cache(maxsize=None)
def _loaded(group: str) -> tuple:
    return tuple(entry.load() for entry in importlib.metadata.entry_points(group=group))


def devices() -> "tuple[Device, ...]":
    return _loaded("zoo.devices")


@dataclasses.dataclass(frozen=True)
class Selected:
    """A --device value and the Device that takes it."""
    device: Device
    value: str


def device_for(value: str) -> Selected:
    """The Device whose pattern takes --device ``value``; UsageError listing what is known."""
    for device in devices():
        if re.fullmatch(device.pattern, value):
            return Selected(device, value)
    known = "; ".join(f"{device.usage} ({device.title})" for device in devices())
    raise UsageError(f"--device {value}: no accelerator runtime takes it ("
                     + (f"known: {known})" if known else "none is installed: run `make venv`)"))


def package_files() -> "tuple[str, ...]":
    """Glob patterns of the files a chip package holds (what marks a folder as one)."""
    return tuple(pattern for patterns in _loaded("zoo.packages") for pattern in patterns)
