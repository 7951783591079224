"""The publishing half of the artifact contract (its names are exported by zoo.artifacts): where a
command may write its output folder, and how the folder gets there (made complete in a staging
folder beside it, then renamed into place).

One rule for every command that writes a folder (each names itself with a ``Tool``): it replaces
only a folder that it wrote itself (the folder's zoo.artifacts.OutputMarker names the command and
its inputs), and only the entries it wrote there. It never writes into a folder that holds one of
its inputs, a build (manifest.json), a compiler's package or another command's output, not even
with --overwrite: pointed at one, it refuses before any work, naming the folder to use instead.
--overwrite means the same on every command: replace this command's earlier output made from
other inputs, or add to a folder this project did not write (its files are kept; a name clash is
refused).

No TensorFlow here, as in the rest of zoo.artifacts.
"""
import contextlib
import dataclasses
import errno
import os
import pathlib
import shutil
import tempfile

from zoo import artifacts, plugins
from zoo.errors import UsageError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@dataclasses.dataclass(frozen=True)
class Tool:
    """A command that writes an output folder: ``name`` goes into the folder's marker, ``flag``
    names the folder on its command line, ``subfolder`` is the folder it writes inside a build
    (offered instead of a folder it refuses)."""
    name: str
    subfolder: str
    flag: str = "--out"


def check_output(out, tool, inputs=(), overwrite=False, default=None):
    """``out`` as an absolute path once it is known, before any work, that ``tool`` may write it
    from ``inputs`` (paths) by the module's rule, and that it can be made (its nearest existing
    parent is a writable folder); nothing is made. A refusal is one UsageError line naming
    ``default`` (else BUILD/SUBFOLDER) as the folder to use instead."""
    out = pathlib.Path(out).absolute()
    refusal = _refusal(out, tool, inputs, overwrite, default)
    if refusal:
        raise UsageError(refusal)
    existing = next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{tool.flag} {out}: {existing} is a file, not a folder; choose another {tool.flag}")
    try:  # a real write: permission bits say yes to root, and /proc says yes to everyone
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".zoo-write-test-"))
    except OSError as error:
        raise UsageError(f"{tool.flag} {out}: cannot write there ({error.strerror}); "
                         f"choose another {tool.flag}") from None
    return out


def _refusal(out, tool, inputs, overwrite, default):
    """Why ``tool`` may not write ``out`` (absolute) from ``inputs``, as one line; None if it may."""
    flag = tool.flag
    if out.exists() and not out.is_dir():
        return f"{flag} {out} is a file; give a folder path"
    held = _held_input(out, inputs)
    if held is not None:
        return (f"{flag} {out} holds {held}, an input of {tool.name}, which never writes there; "
                f"write to {_instead(out, tool, default)} instead")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    marker = artifacts.read_marker(out)
    if marker is not None and marker.tool == tool.name:
        if overwrite or marker.inputs is None or marker.inputs == _resolved(inputs):
            return None
        return (f"{flag} {out} holds {tool.name}'s output of other inputs ({_names(marker.inputs)}); "
                f"pass --overwrite to replace it, or write to another folder")
    what = _what_it_is(out, marker)
    if what:
        return (f"{flag} {out} is {what}, which {tool.name} never replaces; write to "
                f"{_instead(out, tool, default)} instead")
    if overwrite:
        return None
    return (f"{flag} {out} exists and was not written by this project (no {artifacts.MARKER}); choose "
            "another folder, or pass --overwrite to add to it (nothing of yours is removed)")


def _held_input(out, inputs):
    """The first of ``inputs`` that is ``out`` or lies inside it, else None."""
    real = out.resolve()
    for path in _resolved(inputs):
        path = pathlib.Path(path)
        if path == real or real in path.parents:
            return path
    return None


def _names(paths):
    return ", ".join(pathlib.Path(path).name for path in paths) or "none"


def _resolved(inputs):
    return sorted(str(pathlib.Path(path).resolve()) for path in inputs)


def _what_it_is(folder, marker):
    """What a folder this command did not write is, when it is one of this project's (a build, a
    package, another command's output), else None."""
    if (folder / artifacts.MANIFEST).is_file():
        return "a zoo build"
    if marker is not None:
        return f"the output of {marker.tool}"
    packaged = any(next(folder.glob(pattern), None) for pattern in plugins.package_files())
    if (folder / artifacts.REPORT).is_file() or packaged:
        return "a compiler's package"
    return None


def _instead(out, tool, default):
    """The folder to offer instead of ``out``: ``default`` when it is another folder, else the
    tool's sub-folder of the build that ``out`` is or lies in (of ``out`` itself otherwise)."""
    if default is not None and pathlib.Path(default).absolute() != out:
        return pathlib.Path(default)
    build = next((folder for folder in (out, out.parent) if (folder / artifacts.MANIFEST).is_file()), out)
    return build / tool.subfolder


def staging_folder(out):
    """A fresh temporary folder beside ``out`` (its parents made), on the same file system, for the
    work; UsageError when the file system refuses."""
    out = pathlib.Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as error:
        raise UsageError(f"{out}: cannot write there ({error.strerror}); choose another output "
                         "folder") from None


def publish(work, out, tool, inputs=(), overwrite=False):
    """Moves the finished ``work`` folder to ``out`` in one rename, with the marker of ``tool`` and
    ``inputs``, after checking the rule again (another process may have written ``out`` since).
    An earlier output of ``tool`` at ``out`` loses only the entries its marker lists; any other
    entry (the user's) is moved across."""
    work, out = pathlib.Path(work), pathlib.Path(out).absolute()
    refusal = _refusal(out, tool, inputs, overwrite, None)
    if refusal:
        raise UsageError(refusal)
    os.chmod(work, 0o777 & ~artifacts.umask())  # mkdtemp made it private
    entries = sorted(path.name for path in work.iterdir() if path.name != artifacts.MARKER)
    written = artifacts.OutputMarker(tool.name, _resolved(inputs), entries)
    artifacts.write_record(written, work / artifacts.MARKER)
    if not out.exists():
        os.replace(work, out)
        return out
    marker = artifacts.read_marker(out)
    ours = set(marker.entries) if marker is not None and marker.tool == tool.name else set()
    theirs = [path for path in out.iterdir() if path.name not in ours and path.name != artifacts.MARKER]
    clash = [path.name for path in theirs if path.name in entries]
    if clash:
        raise UsageError(f"{out} holds {', '.join(clash)}, not written by {tool.name}, where the new output "
                         "goes; move them away or choose another output folder")
    old = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "previous")
    os.replace(work, out)
    for path in theirs:
        os.replace(old / "previous" / path.name, out / path.name)
    shutil.rmtree(old)
    return out


def remove_staging(work):
    """Removes a staging folder made by ``staging_folder`` (only ever that)."""
    shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def staged(out, tool, inputs=(), overwrite=False):
    """The staging folder of ``out`` (check it first with check_output): what the block writes
    there is published to ``out`` (publish) when the block ends, and removed when it raises. A
    full disk is zoo.artifacts.WriteFailed saying how much was written before it ran out."""
    work = staging_folder(out)
    try:
        yield work
        publish(work, out, tool, inputs, overwrite)
    except (OSError, artifacts.WriteFailed) as error:
        full = disk_full(error, out, work, tool.flag)
        if full is None:
            raise
        raise full from None
    finally:
        remove_staging(work)


def disk_full(error, out, work, flag, kept=False):
    """A WriteFailed saying how much of ``out`` was written in ``work`` when ``error`` is a full
    disk (or quota), else None: the space needed is more than that. ``kept``: ``work`` stays, for
    a later run to continue from."""
    if getattr(error, "errno", None) not in DISK_FULL:
        return None
    out = pathlib.Path(out)
    written = sum(path.stat().st_size for path in pathlib.Path(work).rglob("*") if path.is_file())
    left = f"{work} is kept to continue from" if kept else "nothing was kept"
    return artifacts.WriteFailed(
        f"no space left on the device of {out.parent}: {out.name} needs more than the {human_bytes(written)} "
        f"written before it ran out; {left}: free more space there or choose another {flag}", errno.ENOSPC)


def human_bytes(count):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
