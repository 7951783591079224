"""The start of a multi_worker build, bounded in time and open to Ctrl-C (zoo.distribute).

TensorFlow's MultiWorkerMirroredStrategy waits for the other tasks of TF_CONFIG's cluster with no
limit, inside native code that Ctrl-C cannot reach, and a port taken by another process is its
"Could not start gRPC server". So, before TensorFlow starts, ``meet`` holds this task's port (a
taken one is one line naming the address) and waits, at most --cluster-timeout, until every other
task answers on its own (one line naming those that did not). While TensorFlow then starts and
trains, ``Watch`` ends the process where Python cannot: --cluster-timeout after TensorFlow's
start-up began without it completing (exit 2), and GRACE_S after Ctrl-C when the main thread has
not ended by then (exit 130, within 5 s). A task that never got to train leaves nothing behind.
"""
import os
import select
import signal
import socket
import sys
import threading
import time

from zoo.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError

PROBE_INTERVAL_S = 0.2
GRACE_S = 3.0  # after Ctrl-C: the main thread's own handling first, then the watch ends the process
EXIT_GRACE_S = 1.5  # after the main thread ended on Ctrl-C: the interpreter's exit, then _exit


def _split(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def meet(request, say=print):
    """Returns once every other task of ``request``'s cluster answers on its port, holding this
    task's port meanwhile (so that they see this one); UsageError when the port is taken or when
    some task did not answer within ``request.timeout_s``. Ctrl-C ends it at once."""
    addresses = request.addresses()
    own = addresses.pop(request.task_name)
    listener = _hold(own, request.task_name)
    try:
        say(f"[zoo build] {request.task_name} waiting for {', '.join(addresses)} "
            f"(at most {request.timeout_s:g} s, --cluster-timeout)")
        deadline = time.monotonic() + request.timeout_s
        while True:
            addresses = {name: address for name, address in addresses.items()
                         if not _answers(address, deadline)}
            if not addresses:
                return
            if time.monotonic() >= deadline:
                missing = ", ".join(f"{name} ({address})" for name, address in addresses.items())
                raise UsageError(f"could not reach {missing} within {request.timeout_s:g} s (--cluster-timeout); "
                                 "start every task of TF_CONFIG's cluster with the same command line, check "
                                 "their addresses, or wait longer with --cluster-timeout")
            time.sleep(PROBE_INTERVAL_S)
    finally:
        listener.close()


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
                         f"({error.strerror}); stop what listens there, or give the task a free port") from None
    return listener


def _answers(address, deadline):
    """Whether something accepts a connection at ``address`` now."""
    host, port = _split(address)
    try:
        with socket.create_connection((host, port), timeout=max(0.2, min(1.0, deadline - time.monotonic()))):
            return True
    except OSError:
        return False


class Watch:
    """A thread that ends the process where the main thread, blocked in TensorFlow's native code,
    cannot: ``timeout_s`` after ``arm`` without ``started`` (one line, exit 2), or GRACE_S after
    Ctrl-C if the main thread has not left the ``with`` block by then (one line, exit 130).
    ``cleanup`` runs first when the build never started training. Only in the main thread (it
    needs the signal module's wake-up file descriptor), and only ``enabled``: else it watches
    nothing."""

    def __init__(self, timeout_s, cleanup, prog="zoo", enabled=True):
        self.timeout_s, self.cleanup, self.prog, self.enabled = timeout_s, cleanup, prog, enabled
        self.deadline = None
        self.begun, self.left = threading.Event(), threading.Event()
        self.wake = self.previous = None

    def __enter__(self):
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            return self
        self.wake, write = socket.socketpair()
        write.setblocking(False)
        self.writer = write
        self.previous = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="zoo-startup-watch", daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.left.set()
        if self.wake is not None:
            signal.set_wakeup_fd(self.previous)
        return False

    def arm(self):
        """TensorFlow's start-up begins: it must be over (``started``) within ``timeout_s``."""
        self.deadline = time.monotonic() + self.timeout_s

    def started(self):
        """Every task joined: training begins, and the deadline is off."""
        self.begun.set()

    def _watch(self):
        while not self.left.is_set():
            if select.select([self.wake], [], [], 0.25)[0] and int(signal.SIGINT) in self.wake.recv(64):
                self._interrupted()
                return
            if self.deadline and not self.begun.is_set() and time.monotonic() > self.deadline:
                self._end(f"error: the cluster's tasks answered, but TensorFlow's start-up did not complete within "
                          f"{self.timeout_s:g} s (--cluster-timeout); start every task again", EXIT_USAGE)

    def _interrupted(self):
        if self.left.wait(GRACE_S):  # the main thread is ending by itself: only its exit may hang
            time.sleep(EXIT_GRACE_S)
            os._exit(EXIT_INTERRUPTED)
        hint = "start every task again with --resume" if self.begun.is_set() else "nothing was written"
        self._end(f"interrupted; {hint}", EXIT_INTERRUPTED)

    def _end(self, line, status):
        try:
            if not self.begun.is_set():
                self.cleanup()
            sys.stdout.flush()
            print(f"{self.prog}: {line}", file=sys.stderr, flush=True)
        finally:
            os._exit(status)
