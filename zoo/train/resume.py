"""The work folder of `zoo build` (``<out>.partial``) as an interrupted build leaves it: where it is,
the state --resume reads back (the stages finished, the best losses, the seconds), and whether
anything in it is worth resuming from, so that a build that fails leaves its folder only then."""
import json
import shutil

from zoo import artifacts
from zoo.errors import UsageError

STATE_FILE = "state.json"


def work_folder(out, resume, request):
    """``<out>.partial``: the interrupted build's with --resume (which must exist), else fresh. A
    folder of that name is removed only when it is an interrupted build (it holds state.json).

    A multi_worker task other than the chief gets ``<out>.TASK.partial``, always fresh: what it
    resumes from (the backups, the stages done) is the chief's, and its own left-over folder (it
    was killed) holds nothing to keep."""
    if not request.is_chief:
        work = out.with_name(f"{out.name}.{request.task_name}.partial")
        if work.exists() and not (work / STATE_FILE).is_file():
            raise UsageError(f"{work} exists and is not a zoo build worker's folder; move it away or "
                             "choose another --out")
        shutil.rmtree(work, ignore_errors=True)
        return work
    work = out.with_name(out.name + ".partial")
    interrupted = (work / STATE_FILE).is_file()
    if resume and not interrupted:
        raise UsageError(f"nothing to resume: {work} holds no interrupted build; run without --resume")
    if work.exists() and not interrupted:
        raise UsageError(f"{work} exists and is not an interrupted zoo build; move it away or "
                         "choose another --out")
    if interrupted and not resume:
        shutil.rmtree(work)
    return work


class State:
    """What an interrupted build has finished: read back by --resume."""

    def __init__(self, work, settings):
        self.path = work / STATE_FILE
        if self.path.exists():
            saved = _read_state(self.path)
            if saved["settings"] != settings:
                raise UsageError(f"--resume with different settings than the interrupted build "
                                 f"({self.path}); run without --resume to start again")
            self.values = saved
        else:
            self.values = {"settings": settings, "done": {}, "seconds": {}}
            self.save()

    def done(self, stage):
        return stage in self.values["done"]

    def finish(self, stage, seconds, **facts):
        self.values["done"][stage] = facts
        self.values["seconds"][stage] = round(self.values["seconds"].get(stage, 0) + seconds, 2)
        self.save()

    def save(self):
        artifacts.write_text(self.path, json.dumps(self.values, indent=1))


def resumable(work):
    """Whether an interrupted build in ``work`` has anything --resume would continue from."""
    return bool(finished_stages(work)) or any(path.is_file() for path in work.glob("*_backup/**/*"))


def finished_stages(work):
    """The stages an interrupted build in ``work`` has finished (none when it has no state)."""
    try:
        return json.loads((work / STATE_FILE).read_text()).get("done", {})
    except (OSError, ValueError, AttributeError):
        return {}


def _read_state(path):
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        saved = None
    if not isinstance(saved, dict) or not {"settings", "done", "seconds"} <= set(saved):
        raise UsageError(f"{path} is damaged, so the interrupted build cannot be resumed; run without "
                         "--resume to start again")
    return saved
