"""One registry of models (timm-style ``create_model(name)``), with each model's input recipe.

A registry entry says *how* each input is made from a GazeCapture frame (the recipe). Everything
that can be read off the built model -- shapes, parameter count, MACs -- is read off it, never
typed here.
"""
import dataclasses
import importlib
import inspect

from zoo.data.recipes import GAZE_SCALE_CM, RECIPES  # noqa: F401 (the registry's public names)
from zoo.errors import UsageError


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder_path: str  # "module:function"; imported on first use, so a name checks without TensorFlow
    fixed_kwargs: dict
    recipes: dict  # input name -> recipe
    summary: str

    @property
    def builder(self):
        module, function = self.builder_path.split(":")
        return getattr(importlib.import_module(module), function)

    def build(self, **kwargs):
        unknown = set(kwargs) - set(self.builder_arguments())
        if unknown:
            raise UsageError(f"{self.name} takes no argument {sorted(unknown)}; "
                             f"it takes {sorted(self.builder_arguments())}")
        return self.builder(**{**self.fixed_kwargs, **kwargs})

    def builder_arguments(self, **overrides):
        """The full argument set the builder is called with (defaults, fixed values, overrides)."""
        defaults = {name: p.default for name, p in inspect.signature(self.builder).parameters.items()}
        return {**defaults, **self.fixed_kwargs, **overrides}


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its name, how it is made from a frame (recipe) and its shape (no batch)."""
    name: str
    recipe: str
    shape: tuple


def input_specs(name, model):
    """The input specs of registered model ``name`` as built (shapes read off ``model``)."""
    recipes = get_entry(name).recipes
    return [InputSpec(t.name.split(":")[0], recipes[t.name.split(":")[0]], tuple(t.shape[1:]))
            for t in model.inputs]


_REGISTRY: "dict[str, ModelEntry]" = {}


def register(name, builder_path, recipes, summary, **fixed_kwargs):
    _REGISTRY[name] = ModelEntry(name, builder_path, fixed_kwargs, recipes, summary)


register("itracker", "zoo.models.itracker:itracker",
         {"face": "face", "left_eye": "left_eye", "right_eye": "right_eye", "face_grid": "grid_mask"},
         "iTracker (Krafka et al. 2016): face + both eyes at 224x224 + 25x25 face grid")
register("tinytracker", "zoo.models.tinytracker:tinytracker", {"face": "face_grid_rgb"},
         "TinyTracker: MobileNetV3-Small minimalistic, 112x112 RGB face + grid channels")
register("tinytracker_128", "zoo.models.tinytracker:tinytracker", {"face": "face_grid_rgb"},
         "TinyTracker at 128x128, the input size of the authors' released model", input_size=128)
register("tinytracker_s", "zoo.models.tinytracker_s:tinytracker_s", {"face": "face_grid_grey"},
         "TinyTrackerS: ~86k-parameter 96x96 greyscale face + grid channels")


def list_models():
    return sorted(_REGISTRY)


def get_entry(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name, **kwargs):
    """Builds registered model ``name``; kwargs override the builder's defaults."""
    return get_entry(name).build(**kwargs)
