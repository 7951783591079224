"""Running Google's edgetpu_compiler on one model, into a private work folder, and turning what it
printed and wrote into the "compiler" part of report.json.

The compiler runs in its own process group with a timeout; on a timeout, Ctrl-C or any other
exit from here the whole group is killed, so no compiler is ever left running.
"""
import dataclasses
import shutil

from compilers.edgetpu import log as edgetpu_log
from compilers.edgetpu.report import CompilerRun
from compilers.edgetpu.rules import MAPPED
from compilers.common import run_tool
from zoo.errors import UsageError

COMPILER = "edgetpu_compiler"


def find_compiler(compiler):
    """The compiler's path: ``compiler`` when given (UsageError when it is not executable), else
    the one on PATH, else None."""
    if compiler is None:
        return shutil.which(COMPILER)
    found = shutil.which(str(compiler))
    if found is None:
        raise UsageError(f"--compiler {compiler}: not an executable file; give the path of {COMPILER}")
    return found


def _read_results(run, output, work_dir, model):
    """``run`` with what the compiler's stdout, its .log and the compiled file in ``work_dir`` say;
    and the failure lines it printed."""
    parsed = edgetpu_log.parse_compiler_output(output)
    block = parsed["models"][0] if parsed["models"] else {}
    run = dataclasses.replace(run, version=parsed["version"], compile_ms=parsed["compile_ms"],
                              **{field: block.get(field) for field, _ in edgetpu_log.FIELDS.values()})
    log = work_dir / f"{model.stem}_edgetpu.log"
    operations = parsed["operations"]
    if log.is_file():
        run.log = log.name
        operations = edgetpu_log.parse_log(log.read_text(errors="replace"))["operations"] or operations
    run.operations = operations
    run.cpu_ops = [row for row in operations if row.status != MAPPED]
    if run.ops_on_tpu is None and run.ops_total is not None:
        # Only a partial mapping prints the two counts; otherwise every operation is mapped.
        run.ops_on_tpu, run.ops_on_cpu = run.ops_total, 0
    return run, parsed["errors"]


def compile_model(compiler, model, work_dir, min_runtime_version, timeout_s) -> CompilerRun:
    """Runs ``compiler`` on ``model`` into ``work_dir``; the compiler part of report.json, whose
    ``error`` is None only when a compiled model was written."""
    command = [compiler, "-o", str(work_dir)]
    if min_runtime_version is not None:
        command += ["-m", str(min_runtime_version)]
    command.append(str(model))
    output, returncode = run_tool(command, timeout_s)
    run = CompilerRun(path=compiler, command=command, returncode=returncode, output=output,
                      version=None, error=None, edgetpu_model=None, log=None)
    if output is None:
        run.error = f"{COMPILER} timed out after {timeout_s} s"
        return run
    run, errors = _read_results(run, output, work_dir, model)
    compiled = work_dir / f"{model.stem}_edgetpu.tflite"
    if errors or returncode != 0:
        run.error = "; ".join(errors) or f"{COMPILER} exited with status {returncode}"
        compiled.unlink(missing_ok=True)  # whatever a failed run left is not a compiled model
    elif not compiled.is_file():
        run.error = f"{COMPILER} reported success but wrote no {compiled.name}"
    else:
        try:
            run.compiled_model = edgetpu_log.compiled_cpu_ops(compiled)
            run.edgetpu_model = compiled.name
        except UsageError as error:  # a compiler fault, not bad input
            run.error = f"{COMPILER} wrote an unreadable {compiled.name} ({error})"
            compiled.unlink()
    return run
