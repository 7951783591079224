"""One progress line on stderr for long work: redrawn in place on a terminal, a plain line every
``LOG_EVERY_S`` seconds otherwise; silent for work that finishes within ``QUIET_S``. The line is a
courtesy: a closed or broken stderr (a pipe whose reader went away) silences it, never the work."""
import sys
import time

QUIET_S = 1.0
LOG_EVERY_S = 10.0


class Progress:
    def __init__(self, label, total, enabled=True, stream=None):
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.shown = None  # when the line was last written
        self.done = 0

    def update(self, done, detail=""):
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        tty = self.stream.isatty()
        if now - self.started < QUIET_S or (self.shown and now - self.shown < (0.2 if tty else LOG_EVERY_S)):
            return
        self._write(detail, final=False)
        self.shown = now

    def close(self, detail=""):
        if self.enabled and (self.shown or time.monotonic() - self.started >= QUIET_S):
            self._write(detail, final=True)

    def _write(self, detail, final):
        seconds = time.monotonic() - self.started
        line = f"{self.label}: {self.done}/{self.total}{', ' + detail if detail else ''} [{seconds:.0f} s]"
        try:
            if self.stream.isatty():
                self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # broken pipe, closed stream
            self.enabled = False
