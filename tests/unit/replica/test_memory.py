"""The replica's kernel memory limit (RLIMIT_DATA), in a child process of its own."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
from podium.replica import memory
print(memory.apply_limit())
try:
    block = bytearray(400 * 1024 * 1024)
    print("allocated")
except MemoryError:
    print("MemoryError")
"""


def run(**env: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.split()


def test_an_allocation_over_the_limit_fails_at_once() -> None:
    assert run(PODIUM_MEMORY_LIMIT_MB="200") == ["200", "MemoryError"]


def test_the_limit_can_be_turned_off() -> None:
    env = {"PODIUM_MEMORY_LIMIT_MB": "200", "PODIUM_MEMORY_RLIMIT": "off"}
    assert run(**env) == ["None", "allocated"]


def test_no_limit_without_an_instance_type() -> None:
    assert run(PODIUM_MEMORY_LIMIT_MB="") == ["None", "allocated"]
