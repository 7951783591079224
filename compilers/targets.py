"""The one table of targets. Each target is a package ``compilers.<name>`` with the same public
names:

- ``compile(model, out_dir=None, *, overwrite=False, progress=None, **options) -> Report``: an
  int8 TFLite (any, not only the zoo's) to what the accelerator runs, in ``out_dir`` (default
  ``zoo.artifacts.compiler_output(model, name)``: BUILD/<name> for a build's int8 model);
- ``read_report(folder) -> Report``: the typed report.json a compile left there;
- ``main(argv=None) -> int``: the command line, also run as ``python compilers/<name>.py``.

Every Report has a ``headline`` (compilers.report.Headline). benchmarks.compare, ``zoo info``
and the tests loop over TARGETS; nothing else lists the targets.
"""
import dataclasses
import importlib
import pathlib
import types
import typing

from zoo.errors import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Target:
    """One accelerator. ``needs``: what must be installed for a full compile (the adapter says
    what it does without it); ``options``: compile()'s keyword options beyond the common ones;
    ``reused``: whether benchmarks.compare reuses an existing output (slow targets) rather than
    compiling again."""
    name: str
    title: str
    needs: str
    options: typing.Tuple[str, ...]
    reused: bool = False

    @property
    def package(self) -> str:
        return f"compilers.{self.name}"

    @property
    def script(self) -> pathlib.Path:
        return REPO / "compilers" / f"{self.name}.py"

    def module(self) -> types.ModuleType:
        """The target's package (imported on first use: some pull in large toolchains)."""
        return importlib.import_module(self.package)

    @property
    def tool(self):
        """The command as zoo.artifacts' output-folder rule knows it (what it writes, and where)."""
        from zoo import artifacts
        return artifacts.Tool(f"compilers/{self.name}.py", self.name, "-o")

    def output_folder(self, model: pathlib.Path) -> pathlib.Path:
        """Where compile() writes by default, and where the benchmarks look."""
        from zoo import artifacts
        return artifacts.compiler_output(model, self.name)


TARGETS: typing.Dict[str, Target] = {target.name: target for target in (
    Target("edgetpu", "Coral Edge TPU", "Google's edgetpu_compiler (x86-64 Debian/Ubuntu; the pre-flight "
           "needs nothing)", ("compiler", "min_runtime_version", "timeout_s", "preflight_only")),
    Target("imx500", "Sony IMX500 (Raspberry Pi AI Camera)", "model-compression-toolkit, edge-mdt-tpc, "
           "imx500-converter and Java 17; imx500-package on a Raspberry Pi",
           ("method", "calibration_frames", "calibration_data", "recipe", "keras", "face_grid", "epochs",
            "tpc_version", "output_bits", "labels", "task"), reused=True),
    Target("ethosu", "Arm Ethos-U NPU (Vela)", "ethos-u-vela (Arm's Vela compiler, from PyPI; pinned in "
           "requirements/stack.txt)", ("accelerator", "system_config", "memory_mode", "timeout_s")),
    Target("mcu", "Microcontrollers (TFLite Micro)", "tflite-micro (its Python interpreter measures the "
           "arena) and ai-edge-litert; no board needed", ("board", "calibration_data")),
)}


def get(name: str) -> Target:
    """The target called ``name``; UsageError listing the targets otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None


def compiled_outputs(model: "str | pathlib.Path") -> "list[tuple[Target, pathlib.Path, object | None]]":
    """(target, its default output folder for ``model``, the Headline of the report there, or None
    when that target has not compiled it there) for every target, in table order."""
    found = []
    for target in TARGETS.values():
        folder = target.output_folder(pathlib.Path(model))
        headline = None
        if (folder / "report.json").is_file():
            try:
                headline = target.module().read_report(folder).headline
            except UsageError:
                headline = None
        found.append((target, folder, headline))
    return found
