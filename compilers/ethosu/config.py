"""The Ethos-U configurations, all taken from Vela itself: the accelerators from its
architecture_features.Accelerator, the system configurations and memory modes from the
configuration file shipped in its wheel (config_files/Arm/vela.ini), and what a choice resolves to
(clock, arena limit, Vela's own defaults) from Vela's ArchitectureFeatures, the object its command
line builds. No figure is typed in here.

Vela's package is the top-level ``ethosu`` (a namespace package); this target's package is
``compilers.ethosu``, imported only under that name, so the two never meet on sys.path."""
import contextlib
import dataclasses
import functools
import io
import pathlib
import typing

from zoo.errors import UsageError

# The accelerator the adapter compiles for unless told otherwise; BUILD_NOTES "Ethos-U target"
# says why it is not Vela's own default (ethos-u55-256).
DEFAULT_ACCELERATOR = "ethos-u55-128"
CONFIG_FILE = "Arm/vela.ini"  # Vela's own name for the file in its config_files folder
_SYSTEM, _MEMORY = "System_Config.", "Memory_Mode."


def vela_version() -> str:
    """The installed Vela's version (its package metadata, as `vela --version` prints it)."""
    from importlib.metadata import version
    return version("ethos-u-vela")


@functools.lru_cache(maxsize=None)
def _vela_ini_sections() -> typing.Tuple[str, ...]:
    import configparser
    from ethosu.vela import architecture_features
    parser = configparser.ConfigParser()
    parser.read(pathlib.Path(architecture_features.CONFIG_FILES_PATH) / CONFIG_FILE)
    return tuple(parser.sections())


def accelerators() -> typing.List[str]:
    """Every accelerator configuration Vela compiles for (its --accelerator-config choices)."""
    from ethosu.vela.architecture_features import Accelerator
    return Accelerator.member_list()


def system_configs() -> typing.List[str]:
    """The system configurations of Vela's Arm/vela.ini."""
    return [name[len(_SYSTEM):] for name in _vela_ini_sections() if name.startswith(_SYSTEM)]


def memory_modes() -> typing.List[str]:
    """The memory modes of Vela's Arm/vela.ini."""
    return [name[len(_MEMORY):] for name in _vela_ini_sections() if name.startswith(_MEMORY)]


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One Vela configuration, resolved by Vela. ``arena_limit_bytes``: the memory mode's
    arena_cache_size, None when the mode sets none (then Vela's limit is the address space, not a
    memory size)."""
    accelerator: str
    system_config: str
    memory_mode: str
    core_clock_hz: float
    arena_limit_bytes: typing.Optional[int]

    def vela_arguments(self) -> typing.List[str]:
        """The Vela command-line arguments that select this configuration."""
        return ["--accelerator-config", self.accelerator, "--config", CONFIG_FILE,
                "--system-config", self.system_config, "--memory-mode", self.memory_mode]


def _choose(flag: str, value: typing.Optional[str], names: typing.Sequence[str]) -> typing.Optional[str]:
    if value is None or value in names:
        return value
    raise UsageError(f"{flag} {value}: Vela {vela_version()} does not know it; choose one of "
                     f"{', '.join(names)}")


def resolve(accelerator: typing.Optional[str] = None, system_config: typing.Optional[str] = None,
            memory_mode: typing.Optional[str] = None) -> Configuration:
    """The configuration Vela builds from these names (None: Vela's own default for the
    accelerator's family); UsageError for a name Vela does not know or a combination it refuses."""
    from ethosu.vela import architecture_features
    from ethosu.vela.errors import VelaError
    accelerator = _choose("--accelerator", accelerator or DEFAULT_ACCELERATOR, accelerators())
    _choose("--system-config", system_config, system_configs())
    _choose("--memory-mode", memory_mode, memory_modes())
    default = architecture_features.ArchitectureFeatures.DEFAULT_CONFIG
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "No configuration specified" notes
            arch = architecture_features.ArchitectureFeatures(
                vela_config_files=None, accelerator_config=accelerator,
                system_config=system_config or default, memory_mode=memory_mode or default,
                max_blockdep=architecture_features.ArchitectureFeatures.MAX_BLOCKDEP, verbose_config=False,
                arena_cache_size=None)
    except VelaError as error:
        raise UsageError(f"Vela refuses --accelerator {accelerator} --system-config {system_config} "
                         f"--memory-mode {memory_mode}: {error.error_msg}") from None
    limit = arch.arena_cache_size if arch.arena_cache_size < arch.max_address_offset else None
    return Configuration(accelerator, arch.system_config, arch.memory_mode, float(arch.core_clock), limit)


def defaults_text() -> str:
    """For --help: the system configuration and memory mode Vela picks for each accelerator family
    when none is given (asked of Vela, one accelerator per family)."""
    families: typing.Dict[str, Configuration] = {}
    for name in accelerators():
        families.setdefault(name.rsplit("-", 1)[0], resolve(name))
    return "; ".join(f"{family}: {found.system_config} / {found.memory_mode}"
                     for family, found in families.items())
