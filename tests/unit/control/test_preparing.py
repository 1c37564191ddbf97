"""Models being prepared: the controller asks the backend without waiting, reports each step
of a download as events, and releases what nobody wants; the local backend's model cache
starts one download per model and cancels unwanted ones.

Real download processes (`backends.model_cache.ModelCache`) against loopback Hubs
(tests/support/silent_hub.py), behind the fake backend's `prepare`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from podium.artifacts.download import HubDownload
from podium.artifacts.sources import NodeCache
from podium.backends.base import ModelSource, Preparation, Readiness
from podium.backends.model_cache import ModelCache
from podium.control.preparing import PROGRESS_EVERY_S, Preparing, progress
from podium.core.errors import Unavailable
from podium.core.phases import EventKind
from podium.core.settings import DownloadSettings
from podium.core.spec import HfRef
from tests.support.fake_backend import FakeBackend
from tests.support.silent_hub import fake_hub, silent_listener

WAIT_S = 90


class Events(list[tuple[str, EventKind, str]]):
    def __init__(self) -> None:
        super().__init__()
        self.data: list[dict[str, object]] = []

    def __call__(self, endpoint: str, kind: EventKind, message: str, **data: object) -> None:
        self.append((endpoint, kind, message))
        self.data.append(data)


def _model(ref: HfRef) -> ModelSource:
    return ModelSource(ref=str(ref), digest=ref.revision)


class Prepared:
    """`Preparing` over a backend whose `prepare` is the local backend's model cache, driven
    from the test's thread (each call a pass's question)."""

    def __init__(
        self, cache: NodeCache, events: Events, stall_s: float, monotonic: Callable[[], float]
    ) -> None:
        self.models = ModelCache(cache, DownloadSettings(stall_s=stall_s))
        self.preparing = Preparing(FakeBackend(self.models), events, monotonic=monotonic)

    def path(self, key: tuple[str, int], ref: HfRef) -> Path | None:
        """The model's folder once ready (None while it is fetched)."""
        model = _model(ref)
        if asyncio.run(self.preparing.ready(key, model)):
            return self.models.path(model)
        return None

    def job(self, ref: HfRef) -> HubDownload:
        job = self.models.fetching(_model(ref))
        assert job is not None
        return job

    def describe(self, key: tuple[str, int]) -> str | None:
        return self.preparing.describe(key)

    def retain(self, keys: list[tuple[str, int]]) -> None:
        asyncio.run(self.preparing.retain(keys))

    def cancel_all(self) -> None:
        asyncio.run(self.preparing.release_all())

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.preparing


def _downloads(
    tmp_path: Path,
    hub: str,
    events: Events,
    stall_s: float = 30.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> Prepared:
    cache = NodeCache(tmp_path / "cache", env={"HF_ENDPOINT": hub, "HF_HOME": str(tmp_path)})
    return Prepared(cache, events, stall_s, monotonic)


def _until_done(d: Prepared, key: tuple[str, int], ref: HfRef) -> Path:
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
    refs = {("a", 1): HfRef("acme/never-a1"), ("a", 2): HfRef("acme/never-a2")}
    refs[("b", 1)] = HfRef("acme/never-b1")
    with silent_listener() as hub:
        d = _downloads(tmp_path, hub, events)
        for key, ref in refs.items():
            d.path(key, ref)
        procs = {key: d.job(ref)._proc for key, ref in refs.items()}
        d.retain([("a", 2)])  # a moved on to revision 2; b was deleted
        assert ("a", 2) in d and ("a", 1) not in d and ("b", 1) not in d
        assert procs[("a", 1)].poll() is not None and procs[("b", 1)].poll() is not None  # type: ignore[union-attr]
        assert d.models.fetching(_model(refs[("a", 1)])) is None
        d.cancel_all()
        assert procs[("a", 2)].poll() is not None  # type: ignore[union-attr]


def test_endpoints_that_want_one_model_share_its_download(tmp_path: Path) -> None:
    """One download per model on the node; each endpoint still gets its own events."""
    events = Events()
    with fake_hub("acme/echo", {"model.py": b"x = 1\n"}) as hub:
        d = _downloads(tmp_path, hub, events)
        ref = HfRef("acme/echo")
        assert d.path(("a", 1), ref) is None and d.path(("b", 1), ref) is None
        job = d.job(ref)
        a, b = _until_done(d, ("a", 1), ref), _until_done(d, ("b", 1), ref)
        assert a == b and job._proc is not None and job._proc.poll() is not None
    started = [e for e, k, _ in events if k is EventKind.DOWNLOAD_STARTED]
    done = [e for e, k, _ in events if k is EventKind.DOWNLOAD_DONE]
    assert sorted(started) == ["a", "b"] and sorted(done) == ["a", "b"]


def test_progress_reads_as_a_share_of_the_total_when_it_is_known() -> None:
    assert progress(12_897_485, 47_815_065) == "12.3 MiB of 45.6 MiB (26%)"
    assert progress(2_000, None) == "2.0 KiB so far"
    assert progress(5 * 1024**3, 4 * 1024**3) == "4.0 GiB of 4.0 GiB (100%)"  # never over


def test_progress_events_every_tenth_of_the_total(tmp_path: Path) -> None:
    """A Hub that tells the total and sends part of the file: one progress event for the
    tenths reached (with the total and the share), none more while nothing new arrives."""
    events = Events()
    # a.bin arrives whole; b.bin stops after 250 000 bytes (not written until it ends)
    files = {"a.bin": b"\1" * 200_000, "b.bin": b"\2" * 400_000}
    with fake_hub("acme/echo", files, stall_after=250_000) as hub:
        d = _downloads(tmp_path, hub, events)
        key, ref = ("echo", 1), HfRef("acme/echo")

        def shares() -> list[int]:
            return [
                int(str(data["percent"]))
                for (_, kind, _), data in zip(events, events.data, strict=True)
                if kind is EventKind.DOWNLOAD_PROGRESS
            ]

        deadline = time.monotonic() + WAIT_S
        while not shares() or shares()[-1] < 30:
            assert d.path(key, ref) is None
            assert time.monotonic() < deadline, d.describe(key)
            time.sleep(0.1)
        seen = shares()
        for _ in range(15):  # the rest of b.bin never comes: no further event
            assert d.path(key, ref) is None
            time.sleep(0.1)
        assert shares() == seen
        d.cancel_all()
    assert 30 <= seen[-1] < 40  # a.bin of the 600 000 bytes
    assert len({p // 10 for p in seen}) == len(seen)  # one event per tenth, at most
    last = [i for i, (_, k, _) in enumerate(events) if k is EventKind.DOWNLOAD_PROGRESS][-1]
    assert events.data[last]["total"] == 600_000
    assert "of 585.9 KiB (3" in events[last][2]


def test_progress_events_by_time_when_the_total_is_unknown(tmp_path: Path) -> None:
    """No total: a progress event once data has arrived and PROGRESS_EVERY_S has passed
    since the last (fake time), then none until it passes again."""
    events = Events()
    now = [0.0]
    with fake_hub(
        "acme/echo",
        {"model.py": b"x = 1\n" * 10, "model.bin": b"\1" * 300_000},
        stall_after=100_000,
        file_sizes=False,
    ) as hub:
        d = _downloads(tmp_path, hub, events, monotonic=lambda: now[0])
        key, ref = ("echo", 1), HfRef("acme/echo")
        assert d.path(key, ref) is None  # started
        deadline = time.monotonic() + WAIT_S
        while d.job(ref).bytes_done == 0:  # measured by the job, once a (real) second
            d.job(ref).check()
            assert time.monotonic() < deadline, "no data arrived"
            time.sleep(0.2)
        assert d.path(key, ref) is None
        assert not [k for _, k, _ in events if k is EventKind.DOWNLOAD_PROGRESS]  # too soon
        now[0] += PROGRESS_EVERY_S
        assert d.path(key, ref) is None
        assert d.path(key, ref) is None
        d.cancel_all()
    progress_events = [m for _, k, m in events if k is EventKind.DOWNLOAD_PROGRESS]
    assert len(progress_events) == 1 and progress_events[0].endswith(" so far")


class Reporting(FakeBackend):
    """A backend (a remote one, say) that names signed URLs in what it reports."""

    def __init__(self, answers: list[Preparation]) -> None:
        super().__init__()
        self.answers = answers

    async def prepare(self, model: ModelSource) -> Preparation:
        return self.answers.pop(0)


def test_credentials_in_what_a_backend_reports_never_reach_events() -> None:
    signed = "https://user:s3cret@bucket.example/m.bin?X-Sig=t0ken"
    backend = Reporting(
        [
            Preparation(Readiness.FETCHING, label=signed, origin=signed, bytes_total=10),
            Preparation(
                Readiness.FETCHING, label=signed, origin=signed, bytes_done=5, bytes_total=10
            ),
            Preparation(Readiness.FAILED, label=signed, reason=f"403 from {signed}"),
        ]
    )
    events = Events()
    preparing = Preparing(backend, events)
    model = ModelSource(ref="remote:1")
    assert asyncio.run(preparing.ready(("e", 1), model)) is False
    assert asyncio.run(preparing.ready(("e", 1), model)) is False
    described = preparing.describe(("e", 1))
    with pytest.raises(Unavailable) as failed:
        asyncio.run(preparing.ready(("e", 1), model))
    said = [m for _, _, m in events] + [str(d) for d in events.data]
    said += [described or "", str(failed.value)]
    assert [k for _, k, _ in events] == [
        EventKind.DOWNLOAD_STARTED,
        EventKind.DOWNLOAD_PROGRESS,
        EventKind.DOWNLOAD_FAILED,
    ]
    assert all("s3cret" not in s and "t0ken" not in s for s in said), said
    assert "https://bucket.example/m.bin" in events[0][2]
