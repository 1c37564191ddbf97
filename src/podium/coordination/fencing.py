"""The fencing number a controller acts under (issue 16).

A controller that leads holds an epoch: the lease row's `epoch` after it raised it when it
took the lead (`leadership`). Every write it makes checks, inside the write's own
transaction, that the lease still carries that epoch (`Fence.check`); a controller that
lost the lead (paused, partitioned, slow) gets `core.errors.Fenced` instead of acting. On
PostgreSQL the check locks the lease row `FOR SHARE` until the transaction ends, so a new
leader's takeover (an UPDATE of that row) waits for a write already under way and every
later write of the old leader sees the new epoch: writes are ordered around the takeover,
never interleaved with it.

`SoleFence` is the fence of `podium up`: one process, one controller (the home lock makes
sure), so it always holds the lead and its check costs nothing.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class Fence(Protocol):
    """What an action checks before it happens: does this process still lead?"""

    @property
    def epoch(self) -> int:
        """The fencing number this process took the lead with (0: never led)."""
        ...

    def check(self, session: Session) -> None:
        """In the caller's transaction: raise `Fenced` unless the lease still carries
        `epoch`. Called by every controller write before it writes."""
        ...


class SoleFence:
    """The only controller there is (`podium up`): always the leader, nothing to check."""

    epoch = 1

    def check(self, session: Session) -> None:
        return None


def _is_fence(fence: SoleFence) -> Fence:  # mypy: SoleFence implements the protocol
    return fence
