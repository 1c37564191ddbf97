"""A process whose memory is held by its child: for tests of process-tree accounting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

MiB = 1024 * 1024
_SCRIPT = """
import os, sys, time
mb = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    hoard = b"\\x01" * (mb * 1024 * 1024)  # written, so resident
    print(os.getpid(), flush=True)
    while hoard:
        time.sleep(3600)
    os._exit(0)
os.waitpid(pid, 0)
"""


@dataclass(frozen=True)
class Tree:
    parent: int  # a small process
    child: int  # its child, holding the memory


@contextmanager
def parent_with_a_hungry_child(mb: int) -> Iterator[Tree]:
    """A python process whose child holds `mb` MiB (resident) until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(mb)], stdout=subprocess.PIPE, text=True
    )
    child = 0
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())  # printed once the memory is held
        yield Tree(parent=proc.pid, child=child)
    finally:
        if child:
            with suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        proc.kill()
        proc.wait(30)
