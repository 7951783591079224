"""The table of targets (compilers/targets.py): every target is a package with the same public
names, its command line runs as a script, and every report carries the same headline."""
import dataclasses
import inspect
import subprocess
import sys

import pytest

from compilers.report import Headline
from compilers.targets import TARGETS, get
from conftest import REPO
from zoo.errors import UsageError


def test_the_table_holds_the_four_targets():
    assert list(TARGETS) == ["edgetpu", "imx500", "ethosu", "mcu"]
    with pytest.raises(UsageError, match="choose one of edgetpu, imx500, ethosu, mcu"):
        get("tpu")


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_has_the_same_public_names(name):
    target = TARGETS[name]
    module = target.module()
    for public in ("compile", "read_report", "main", "Report"):
        assert hasattr(module, public), f"compilers.{name} lacks {public}"
    parameters = inspect.signature(module.compile).parameters
    assert list(parameters)[:2] == ["model", "out_dir"]
    assert {"overwrite", "progress"} <= {p for p, v in parameters.items() if v.kind is v.KEYWORD_ONLY}
    hints = {field.name: field.type for field in dataclasses.fields(module.Report)}
    assert hints["headline"] in (Headline, "Headline")
    assert module.Report.KIND and module.Report.SCHEMA_VERSION >= 1


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_script_runs_as_a_user_runs_it(name):
    """`python compilers/NAME.py --help`: the script puts the repository, not compilers/, first on
    sys.path (compilers/ethosu/ would otherwise shadow Vela's own package ethosu)."""
    result = subprocess.run([sys.executable, str(TARGETS[name].script), "--help"], capture_output=True,
                            text=True, cwd=REPO / "compilers", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"compilers/{name}.py" in result.stdout and "exit status" in " ".join(result.stdout.split())
