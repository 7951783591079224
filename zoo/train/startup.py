"""The start of a multi_worker build, bounded in time and open to Ctrl-C (zoo.train.distribute).

TensorFlow's MultiWorkerMirroredStrategy waits for the other tasks of TF_CONFIG's cluster with no
limit, inside native code that Ctrl-C cannot reach, and a port taken by another process is its
"Could not start gRPC server". So, before TensorFlow starts, ``Startup.meet`` holds this task's
port until TensorFlow takes it over (a taken one is one line naming the address) and waits, at
most --cluster-timeout, until every other task answers on its own (one line naming those that did
not).

TensorFlow's waits hold Python's interpreter lock, so no thread of the process can end them:
`zoo build --strategy multi_worker` therefore runs the build in a child process under
``supervise``, a parent that never imports TensorFlow. The child reports (``Startup``) when
TensorFlow's start-up begins and when training begins; the parent ends it --cluster-timeout after
the first without the second (exit 2), and GRACE_S after Ctrl-C when it has not ended by itself
(exit 130, within 5 s). A task that never got to train leaves nothing behind.
"""
import ctypes
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

from zoo.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

PROBE_INTERVAL_S = 0.2
GRACE_S = 3.0  # after Ctrl-C: the build's own handling first, then the supervisor ends it
SUPERVISED_ENV = "ZOO_SUPERVISOR_FD"  # the pipe a supervised build reports on
PR_SET_PDEATHSIG = 1


def _split(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Startup:
    """The start of one build's task: ``meet`` (multi_worker: this task's port held, the others
    waited for), then ``begin`` right before TensorFlow starts (the port handed over to it; the
    supervisor told what to remove if it is ended now), then ``started`` once every task joined.
    ``close`` gives the port back on every way out. Outside a supervisor it reports nothing."""

    def __init__(self, request):
        self.request, self.listener = request, None
        fd = os.environ.pop(SUPERVISED_ENV, None)  # not for the build's own children
        self.pipe = os.fdopen(int(fd), "w", buffering=1) if fd else None

    def meet(self, say=print):
        """Returns once every other task of the cluster answers on its port, holding this task's
        meanwhile (so that they see this one) and after; UsageError when the port is taken or a
        task did not answer within the request's timeout_s. Ctrl-C ends it at once."""
        if self.request.strategy != "multi_worker":
            return
        addresses = self.request.addresses()
        own = addresses.pop(self.request.task_name)
        self.listener = _hold(own, self.request.task_name)
        say(f"[zoo build] {self.request.task_name} waiting for {', '.join(addresses)} "
            f"(at most {self.request.timeout_s:g} s, --cluster-timeout)")
        try:
            _wait_for(addresses, self.request.timeout_s)
        except BaseException:
            self.close()
            raise

    def begin(self, folder, remove):
        """TensorFlow starts now. ``remove``: what becomes of ``folder`` if the supervisor ends the
        build: "unstarted" (removed if training never began), "always" (a worker's own folder) or
        "never" (an interrupted build being resumed)."""
        self.close()
        self._say(f"arm\t{remove}\t{folder}")

    def started(self):
        self._say("started")

    def close(self):
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def _say(self, line):
        if self.pipe is not None:
            self.pipe.write(line + "\n")


def _wait_for(addresses, timeout_s):
    """Returns once something answers at each of ``addresses`` ({task name: "host:port"})."""
    deadline = time.monotonic() + timeout_s
    while True:
        addresses = {name: address for name, address in addresses.items() if not _answers(address, deadline)}
        if not addresses:
            return
        if time.monotonic() >= deadline:
            missing = ", ".join(f"{name} ({address})" for name, address in addresses.items())
            raise UsageError(f"could not reach {missing} within {timeout_s:g} s (--cluster-timeout); start "
                             "every task of TF_CONFIG's cluster with the same command line, check their "
                             "addresses, or wait longer with --cluster-timeout")
        time.sleep(PROBE_INTERVAL_S)


def _hold(address, name):
    """A socket listening on ``address``'s port on every interface, as TensorFlow's server will."""
    _, port = _split(address)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
    try:
        listener.bind(("", port))
        listener.listen(16)
    except OSError as error:
        listener.close()
        raise UsageError(f"TF_CONFIG gives this task ({name}) {address}, and port {port} is taken here "
                         f"({error.strerror}); stop what listens there, or give the task a free "
                         "port") from None
    return listener


def _answers(address, deadline):
    """Whether something accepts a connection at ``address`` now."""
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=max(0.2, min(1.0, deadline - time.monotonic()))):
            return True
    except OSError:
        return False


def supervise(argv, timeout_s, how_to_continue, prog="zoo"):
    """The exit status of `zoo ARGV` (a multi_worker build) run in a child process, ended from here
    where it cannot end itself: ``timeout_s`` after its TensorFlow start-up began without training
    beginning (one line, exit 2), or GRACE_S after Ctrl-C (forwarded to it) when it has not ended
    by then (one line, exit 130, with ``how_to_continue()``). Then what it reported for removal is
    removed."""
    read, write = os.pipe()
    env = {**os.environ, SUPERVISED_ENV: str(write), "PYTHONPATH": os.pathsep.join(
        filter(None, [str(pathlib.Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-m", "zoo", *argv], pass_fds=(write,), env=env,
                             start_new_session=True, preexec_fn=_die_with_parent)
    os.close(write)
    state = _ChildState()
    previous = {number: signal.signal(number, signal.default_int_handler)  # SIGTERM too ends it so
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with os.fdopen(read) as reports:
            return _follow(child, reports, state, timeout_s, prog)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the grace short
        child.send_signal(signal.SIGINT)
        try:
            return _status(child.wait(GRACE_S))
        except subprocess.TimeoutExpired:
            return _stop(child, state, lambda: f"{prog}: interrupted; {how_to_continue()}",
                         EXIT_INTERRUPTED)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _ChildState:
    def __init__(self):
        self.armed_at, self.started, self.remove, self.folder = None, False, "never", None

    def read(self, line):
        kind, *rest = line.rstrip("\n").split("\t")
        if kind == "arm" and len(rest) == 2:
            self.armed_at, (self.remove, self.folder) = time.monotonic(), rest
        elif kind == "started":
            self.started = True


def _follow(child, reports, state, timeout_s, prog):
    while True:
        if select.select([reports], [], [], 0.2)[0]:
            line = reports.readline()
            if not line:  # the child closed its end: it is ending
                return _status(child.wait())
            state.read(line)
        overdue = state.armed_at is not None and time.monotonic() - state.armed_at > timeout_s
        if overdue and not state.started:
            line = (f"{prog}: error: the cluster's tasks answered, but TensorFlow's start-up did not "
                    f"complete within {timeout_s:g} s (--cluster-timeout); start every task again")
            return _stop(child, state, lambda: line, EXIT_USAGE)


def _stop(child, state, line, status):
    """Kills the child, removes what it left that is to be removed, then says ``line()``."""
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    if state.folder and (state.remove == "always" or (state.remove == "unstarted" and not state.started)):
        shutil.rmtree(state.folder, ignore_errors=True)
    print(line(), file=sys.stderr, flush=True)
    return status


def _status(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _die_with_parent():
    """In the child, before it runs: the kernel kills it when the supervisor dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def supervised():
    """Whether this process is a build a supervisor started."""
    return SUPERVISED_ENV in os.environ
