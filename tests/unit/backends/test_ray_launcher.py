"""The launcher under a replica on a Ray node, with real processes: when the process that
started it (the actor) dies, the replica is stopped gracefully (SIGTERM once, its own
shutdown runs), and a replica that ignores SIGTERM is killed after the grace period."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from tests.support.server import wait_until

# The actor's stand-in: starts the launcher on an inherited socket, prints its pid, sleeps.
ACTOR = textwrap.dedent(
    """
    import os, socket, subprocess, sys, time
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(1)
    sock.set_inheritable(True)
    fd = sock.fileno()
    argv = [sys.executable, "-m", "podium.backends.ray_launcher", sys.argv[1],
            str(os.getpid()), str(fd), "--", sys.executable, "-c", sys.argv[2], sys.argv[3]]
    launcher = subprocess.Popen(argv, pass_fds=(fd,), start_new_session=True)
    print(launcher.pid, flush=True)
    time.sleep(120)
    """
)
# The replica's stand-in: notes each SIGTERM it gets; exits on the first unless told not to.
REPLICA = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    marks = Path(sys.argv[1]); stubborn = marks.name.startswith("stubborn")
    def term(*_):
        with marks.open("a") as f: f.write("term\\n")
        if not stubborn: sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    marks.write_text("")
    while True: time.sleep(0.05)
    """
)


def _start(grace_s: float, marks: Path) -> tuple[subprocess.Popen[str], psutil.Process]:
    actor = subprocess.Popen(
        [sys.executable, "-c", ACTOR, str(grace_s), REPLICA, str(marks)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert actor.stdout is not None
    launcher = psutil.Process(int(actor.stdout.readline()))
    wait_until(marks.exists, 30, "the replica stand-in running")
    return actor, launcher


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_actors_death_stops_the_replica_gracefully_with_one_sigterm(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    actor, launcher = _start(30.0, marks)
    replica = launcher.children()[0]
    actor.kill()  # SIGKILL: as a raylet's death takes its workers
    actor.wait()
    wait_until(lambda: _gone(replica) and _gone(launcher), 30, "the replica stopped")
    assert marks.read_text() == "term\n"


def test_a_replica_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    marks = tmp_path / "stubborn-marks"
    actor, launcher = _start(0.5, marks)
    replica = launcher.children()[0]
    os.kill(launcher.pid, signal.SIGTERM)  # the actor's `terminate`
    wait_until(lambda: _gone(replica) and _gone(launcher), 30, "the replica killed")
    assert marks.read_text() == "term\n"  # forwarded once, then SIGKILL
    actor.kill()
    actor.wait()


def test_a_launcher_killed_alone_takes_its_replica_with_it(tmp_path: Path) -> None:
    """A node's processes killed one by one (not as a group): the launcher gets SIGKILL
    and cannot act, so the replica must hear of it itself (it used to live on, orphaned,
    serving nobody and holding its port and memory)."""
    marks = tmp_path / "marks"
    actor, launcher = _start(30.0, marks)
    replica = launcher.children()[0]
    try:
        os.kill(launcher.pid, signal.SIGKILL)
        wait_until(lambda: _gone(replica), 30, "the replica stopped with its launcher")
        assert marks.read_text() == "term\n"  # gracefully: its own shutdown ran
    finally:  # on failure too: never leave the stand-ins running
        if not _gone(replica):
            replica.kill()
        actor.kill()
        actor.wait()
