"""Edge-vision model zoo: gaze estimation (iTracker, TinyTracker) trained and quantized to int8 for
edge accelerators (the targets are compilers/, above this package).

The registry's names are loaded on first use, so `import zoo` (and `zoo --help`) stays instant.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TF C++ start-up chatter out of the CLI

from zoo.errors import UsageError  # noqa: E402

_REGISTRY_NAMES = ("GAZE_SCALE_CM", "InputSpec", "create_model", "get_entry", "input_specs",
                   "list_models")
__all__ = ["UsageError", *_REGISTRY_NAMES]


def __getattr__(name):
    if name in _REGISTRY_NAMES:
        from zoo.models import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
