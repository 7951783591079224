"""The package map of BUILD_NOTES.md, checked: every import in the code (at module level or inside
a function) goes to a package at or below its own layer. The one exception is declared: the
command line (zoo/cli.py) is the application layer and reads the table of targets."""
import ast

import pytest

from conftest import REPO

LAYERS = ["zoo.errors", "zoo.plugins", "zoo.tflite", "zoo.artifacts", "zoo.data", "zoo.models",
          "zoo.inference", "zoo.train", "zoo.cli", "compilers", "benchmarks"]
FACADE = "zoo"  # zoo/__init__.py: the registry's names, loaded on first use
ALLOWED_UP = {("zoo.cli", "compilers.targets"), ("zoo.cli", "compilers.report")}


def _layer(module):
    if module == FACADE:
        return LAYERS.index("zoo.models")
    if module in ("zoo.__main__",):
        return LAYERS.index("zoo.cli")
    matches = [i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")]
    return matches[-1] if matches else None


def _module_name(path):
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def _sources():
    return sorted(p for folder in ("zoo", "compilers", "benchmarks") for p in (REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_go_down_the_layers(path):
    own = _module_name(path)
    if own == FACADE or path.parent == REPO / "compilers" and (path.parent / path.stem).is_dir():
        return  # the facade, and the targets' scripts (each only calls its package's main)
    upward = []
    for module, names in _imports(path):
        targets = [f"{module}.{name}" for name in names if _layer(f"{module}.{name}") is not None] or [module]
        for target in targets:
            layer = _layer(target)
            if layer is not None and layer > _layer(own) and \
                    not any(own == low and target.startswith(high) for low, high in ALLOWED_UP):
                upward.append(target)
    assert not upward, f"{own} imports {upward}, above its layer (BUILD_NOTES.md, Map)"
