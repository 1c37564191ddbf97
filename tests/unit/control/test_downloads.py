"""The controller's downloads: started, looked at without waiting, cancelled when unwanted.

Real download processes against loopback Hubs (tests/support/silent_hub.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from podium.artifacts.sources import NodeCache
from podium.control.downloads import Downloads
from podium.core.errors import Unavailable
from podium.core.phases import EventKind
from podium.core.settings import DownloadSettings
from podium.core.spec import HfRef
from tests.support.silent_hub import fake_hub, silent_listener

WAIT_S = 90


class Events(list[tuple[str, EventKind, str]]):
    def __call__(self, endpoint: str, kind: EventKind, message: str, **data: object) -> None:
        self.append((endpoint, kind, message))


def _downloads(tmp_path: Path, hub: str, events: Events, stall_s: float = 30.0) -> Downloads:
    cache = NodeCache(tmp_path / "cache", env={"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path)})
    return Downloads(cache, DownloadSettings(stall_s=stall_s), events)


def _until_done(d: Downloads, key: tuple[str, int], ref: HfRef) -> Path:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        path = d.path(key, ref)
        if path is not None:
            return path
        time.sleep(0.1)
    raise AssertionError("the download did not end")


def test_a_download_is_started_then_polled_to_its_folder(tmp_path: Path) -> None:
    events = Events()
    with fake_hub("acme/echo", {"model.py": b"x = 1\n"}) as hub:
        d = _downloads(tmp_path, hub, events)
        ref = HfRef("acme/echo")
        assert d.path(("echo", 1), ref) is None  # started, not awaited
        path = _until_done(d, ("echo", 1), ref)
    assert (path / "model.py").read_bytes() == b"x = 1\n"
    assert [k for _, k, _ in events] == [EventKind.DOWNLOAD_STARTED, EventKind.DOWNLOAD_DONE]
    assert ("echo", 1) not in d


def test_a_stalled_download_fails_with_an_event(tmp_path: Path) -> None:
    events = Events()
    with silent_listener() as hub:
        d = _downloads(tmp_path, hub, events, stall_s=1.0)
        with pytest.raises(Unavailable, match="stalled: no data for 1 s"):
            _until_done(d, ("stuck", 1), HfRef("acme/never"))
    assert events[-1][1] is EventKind.DOWNLOAD_FAILED and "stalled" in events[-1][2]


def test_retain_cancels_unwanted_downloads(tmp_path: Path) -> None:
    events = Events()
    with silent_listener() as hub:
        d = _downloads(tmp_path, hub, events)
        for key in (("a", 1), ("a", 2), ("b", 1)):
            d.path(key, HfRef("acme/never"))
        procs = {key: d._jobs[key]._proc for key in d._jobs}
        d.retain([("a", 2)])  # a moved on to revision 2; b was deleted
        assert ("a", 2) in d and ("a", 1) not in d and ("b", 1) not in d
        assert procs[("a", 1)].poll() is not None and procs[("b", 1)].poll() is not None  # type: ignore[union-attr]
        d.cancel_all()
        assert procs[("a", 2)].poll() is not None  # type: ignore[union-attr]
