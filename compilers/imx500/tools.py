"""The IMX500 adapter's outside tools and their files: Java, imxconv-tf and what it writes
(memory report, dnnParams.xml), and the child-process runner with its time limit. No TensorFlow
here."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ElementTree

from compilers.imx500.records import PackageTensor
from zoo.errors import UsageError

SENSOR_PIXELS = (4056, 3040)  # full IMX500 resolution, the frame of picamera2's inference ROI
JAVA_HINT = "apt-get install openjdk-17-jre-headless"
JAVA_TIMEOUT_S = 60
IMXCONV_TIMEOUT_S = 3600  # iTracker-size models took ~5 minutes; a hung converter must not hang us
MCT_TIMEOUT_S = 7200      # MCT GPTQ/QAT on a CPU can take an hour


class CompileError(Exception):
    """The toolchain failed, or would: the model does not fit or has an operator imxconv-tf
    refuses. The message is one line."""


def java_version():
    """Java's version line; UsageError when Java 17 or newer is missing (imxconv-tf needs it)."""
    java = shutil.which("java")
    if java is None:
        raise UsageError(f"imxconv-tf needs Java 17 and no `java` is on PATH; install it: {JAVA_HINT}")
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UsageError(f"`{java} -version` did not answer within {JAVA_TIMEOUT_S} s; fix or replace that "
                         f"java ({JAVA_HINT})") from None
    except OSError as error:
        raise UsageError(f"cannot run {java} ({error.strerror}); install Java 17: {JAVA_HINT}") from None
    line = ((result.stderr or result.stdout).strip().splitlines() or [""])[0]
    match = re.search(r'version "(\d+)', line)
    if not match or int(match.group(1)) < 17:
        raise UsageError(f"imxconv-tf needs Java 17, found {line or 'an unknown java'}; install it: "
                         f"{JAVA_HINT}")
    return line


def imxconv():
    beside_python = pathlib.Path(sys.executable).parent / "imxconv-tf"
    found = str(beside_python) if beside_python.is_file() else shutil.which("imxconv-tf")
    if found is None:
        raise UsageError("imxconv-tf not found; install it: pip install 'imx500-converter[tf]==3.19.2'")
    return found


def run_logged(command, log_path, on_line, timeout_s, env=None, merge_stderr=True):
    """Runs ``command``, writing its output to ``log_path`` and passing each stdout line to
    ``on_line``; kills it after ``timeout_s`` seconds or on Ctrl-C. Returns (exit status, timed out)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env,
                                   stderr=subprocess.STDOUT if merge_stderr else log)
        timed_out = threading.Event()

        def stop():
            timed_out.set()
            process.kill()
        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            for line in process.stdout:
                if merge_stderr:
                    log.write(line)
                on_line(line.rstrip())
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            timer.cancel()
    return returncode, timed_out.is_set()


def error_line(text, exception_first=False):
    """The one line that says why a tool failed: its first ERROR (with the first detail line when
    it announces details, as imxconv-tf's "...restrictions. Errors are:") or its last Python
    exception message, whichever ``exception_first`` prefers; else its last line."""
    lines = [re.sub(r"\s*\[[^\]]*\.py:\d+\]$", "", line.strip()) for line in text.splitlines()]
    lines = [line for line in lines if line]

    def first_error():
        for number, line in enumerate(lines):
            if re.search(r"\b(ERROR|CRITICAL)\b", line):
                message = re.sub(r"^.*?\b(ERROR|CRITICAL)\b\s*:?\s*", "", line)
                details = [d for d in lines[number + 1:] if "reason:" in d] or \
                    [d for d in lines[number + 1:] if re.search(r"error", d, re.IGNORECASE)]
                return f"{message} {details[0]}" if message.endswith(":") and details else message
        return None

    def last_exception():
        return next((line for line in reversed(lines) if re.match(r"^[\w.]*(Error|Exception)\b.*: ", line)),
                    None)

    found = (last_exception() or first_error()) if exception_first else (first_error() or last_exception())
    return (found or (lines[-1] if lines else "no output"))[:500]


_IMXCONV_MILESTONE = re.compile(r"Starting SDSPconv|conversion finished|Backend successfully")
_IMXCONV_PREFIX = re.compile(r"^.*INFO\s*:\s*(CODE: \[\w+\]\s*)?")


def run_imxconv(converter, keras_path, convert_dir, say, timeout_s=IMXCONV_TIMEOUT_S):
    """Runs imxconv-tf into ``convert_dir``, its log beside it, and relays its stage lines."""
    say(f"imxconv-tf: converting {keras_path.name} (about a minute)")
    scratch = convert_dir.parent / "imxconv-tmp"  # it leaves its intermediate files there on failure
    scratch.mkdir(exist_ok=True)
    command = [converter, "-i", str(keras_path), "-o", str(convert_dir), "--report-size-unit", "B"]
    log_path = convert_dir.parent / "imxconv.log"

    def relay(line):
        if _IMXCONV_MILESTONE.search(line):
            say("imxconv-tf: " + _IMXCONV_PREFIX.sub("", line.strip()))
    try:
        returncode, timed_out = run_logged(command, log_path, relay, timeout_s,
                                           env={**os.environ, "TMPDIR": str(scratch)})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if timed_out:
        raise CompileError(f"imxconv-tf did not finish within {timeout_s} s and was stopped")
    if returncode != 0 or not (convert_dir / "packerOut.zip").is_file():
        raise CompileError(f"imxconv-tf failed (exit {returncode}): "
                           f"{error_line(log_path.read_text(errors='replace'))}")


_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


def size_bytes(text):
    """A memory report size ("658464B", "787.69KB", "8.00MB") in bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?B)\s*", str(text))
    if not match:
        raise CompileError(f"unexpected size {text!r} in the imxconv-tf memory report")
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def memory(report_path):
    """The memory section of report.json from imxconv-tf's NAME_MemoryReport.json."""
    try:
        figures = json.loads(report_path.read_text())["Memory Report"]
        usage = size_bytes(figures["Memory Usage"])
        available = size_bytes(figures["Total Memory Available On Chip"])
        return {"usage_bytes": usage, "available_bytes": available,
                "utilization": round(usage / available, 4), "fit_in_chip": bool(figures["Fit In Chip"]),
                "runtime_bytes": size_bytes(figures["Runtime Memory Physical Size"]),
                "model_bytes": size_bytes(figures["Model Memory Physical Size"]),
                "reserved_bytes": size_bytes(figures["Reserved Memory"]),
                "input_persistent": figures.get("Input Persistent")}
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError) as error:
        raise CompileError(f"{report_path.name}: not the memory report imxconv-tf writes ({error})") from None


def check_fit(figures, name):
    if not figures["fit_in_chip"]:
        raise CompileError(
            f"{name} does not fit in the IMX500: it needs {figures['usage_bytes']:,} bytes "
            f"({figures['model_bytes']:,} model + {figures['runtime_bytes']:,} runtime + "
            f"{figures['reserved_bytes']:,} reserved) of {figures['available_bytes']:,} on chip")


def tensors(params_path, kind):
    """Inputs or outputs of the network as dnnParams.xml states them (shape in ordinal order)."""
    found = []
    for tensor in ElementTree.parse(params_path).getroot().iter(f"{kind}Tensor"):
        dimensions = sorted(tensor.iter("dimension"), key=lambda d: int(d.get("ordinal")))
        found.append(PackageTensor(name=tensor.get("name"), shape=[int(d.get("size")) for d in dimensions],
                                   bits=int(tensor.get("bitsPerElement")), format=tensor.get("format"),
                                   scale=float(tensor.get("scale")), shift=int(tensor.get("shift"))))
    return found
