"""The parent of a replica on a Ray node: it stops the replica gracefully when its actor dies.

`python -m podium.backends.ray_launcher GRACE_S PARENT_PID FD -- python -m podium.replica …`

A replica's actor can die at any moment (killed, its node's raylet gone). The kernel tells
this launcher (`PR_SET_PDEATHSIG` = SIGTERM) and the launcher then stops the replica as a
stop does: SIGTERM, so in-flight requests finish and new connections are refused (the
gateway sends those to another replica), then SIGKILL after `GRACE_S`. A launcher
that died with its replica alive would leave a replica nobody manages, so the replica runs
in the launcher's process group (a SIGKILL of the group takes both) and is itself told of
the launcher's death (`PR_SET_PDEATHSIG` = SIGTERM, set in the child before it runs the
replica): a launcher killed alone (its node's processes killed one by one) still stops it.

SIGTERM sent to the launcher alone (the actor's `terminate`) is forwarded once: a second
SIGTERM would make the replica's server skip its graceful shutdown. The launcher exits as
the replica did (its code, or the same signal), so the actor reads the replica's exit.
Imports nothing of Podium: it starts in a few milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from types import FrameType

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def main(argv: list[str]) -> int:
    grace_s, parent_pid, fd = float(argv[0]), int(argv[1]), int(argv[2])
    command = argv[argv.index("--") + 1 :]
    stop = _Stop(grace_s)
    signal.signal(signal.SIGTERM, stop.asked)  # before the prctl: no window without it
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the actor died before the prctl
        return 1
    launcher = os.getpid()
    child = subprocess.Popen(
        command, pass_fds=(fd,), close_fds=True, preexec_fn=lambda: _die_with(launcher)
    )
    os.close(fd)
    stop.child = child
    stop.forward()  # a SIGTERM that came while the replica was being started
    while True:
        try:
            code = child.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if stop.deadline is not None and time.monotonic() >= stop.deadline:
                child.kill()
    if code < 0:  # die of the same signal, so the actor reads the replica's own end
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _die_with(parent: int) -> None:
    """In the replica's process, before it runs: SIGTERM when the launcher dies (exit at
    once if it already has). The launcher is single-threaded, so `preexec_fn` is safe."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class _Stop:
    """A SIGTERM asked for (from the actor, or the kernel when the actor died): passed on
    to the replica once, with the deadline of its SIGKILL."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.deadline: float | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self._sent = False

    def asked(self, _sig: int, _frame: FrameType | None) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace_s
        self.forward()

    def forward(self) -> None:
        if self.deadline is not None and self.child is not None and not self._sent:
            self._sent = True
            self.child.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
