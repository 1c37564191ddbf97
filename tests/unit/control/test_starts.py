"""Replica starts as tasks on the controller's loop (`control.starts`): at most `workers`
batches at once, each batch's end wakes the controller, a failure ends its batch, replicas
cancelled before their turn are skipped, and a closing controller lets a start under way
finish (briefly) but begins none."""

from __future__ import annotations

import asyncio

from podium.control.starts import Batch, BatchResult, Starts


def test_at_most_workers_batches_run_at_once_and_each_end_wakes() -> None:
    woken: list[str] = []

    async def main() -> None:
        starts = Starts(woken.append, workers=2)
        release = asyncio.Event()
        running, peak = 0, 0

        async def work(batch: Batch) -> BatchResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1
            return BatchResult()

        for name in ("a", "b", "c", "d", "e"):
            starts.launch(name, 1, [f"{name}-r1"], decided=0.0, since=0.0, work=work)
        await starts.settle(0.2)
        assert (peak, running) == (2, 2)  # three wait for a slot
        assert starts.done() == [] and woken == []
        release.set()
        for _ in range(50):
            if len(woken) == 5:
                break
            await asyncio.sleep(0.01)
        assert peak == 2
        assert [b.endpoint for b, _ in starts.done()] == ["a", "b", "c", "d", "e"]
        assert sorted(woken) == ["a", "b", "c", "d", "e"]

    asyncio.run(main())


def test_a_failure_is_collected_and_cancelled_replicas_are_skipped() -> None:
    async def main() -> None:
        starts = Starts(lambda _: None)
        gate = asyncio.Event()
        begun: list[str] = []

        async def work(batch: Batch) -> BatchResult:
            out = BatchResult()
            for rid in batch.replica_ids:
                await gate.wait()
                if rid in batch.cancelled:
                    continue
                begun.append(rid)
                if rid == "x-r1-c":
                    raise RuntimeError("the backend broke")
            return out

        starts.launch("x", 1, ["x-r1-a", "x-r1-b", "x-r1-c"], decided=0, since=0, work=work)
        assert starts.cancel("x-r1-b") and not starts.cancel("nope")
        assert [sorted(b.cancelled) for b in starts.pending("x")] == [["x-r1-b"]]
        gate.set()
        await starts.settle()
        ((batch, res),) = starts.done()
        assert begun == ["x-r1-a", "x-r1-c"]
        assert isinstance(res.error, RuntimeError) and batch.endpoint == "x"

    asyncio.run(main())


def test_close_lets_a_start_under_way_finish_and_begins_none() -> None:
    async def main() -> None:
        starts = Starts(lambda _: None, workers=1)
        begun: list[str] = []

        async def quick(batch: Batch) -> BatchResult:
            for rid in batch.replica_ids:
                if rid not in batch.cancelled:
                    begun.append(rid)
                    await asyncio.sleep(0.05)  # a start in flight
            return BatchResult()

        async def stuck(batch: Batch) -> BatchResult:
            await asyncio.sleep(3600)
            return BatchResult()

        first = starts.launch("a", 1, ["a-r1-a", "a-r1-b"], decided=0, since=0, work=quick)
        await asyncio.sleep(0.01)  # a-r1-a is being started
        later = starts.launch("b", 1, ["b-r1-a"], decided=0, since=0, work=stuck)
        await starts.close(wait_s=0.5)
        assert begun == ["a-r1-a"]  # its sibling was not begun
        assert first.task.done() and not first.task.cancelled()
        await asyncio.sleep(0)
        assert later.task.cancelled()  # still running after the wait: cancelled
        assert starts.pending("a") == [] and starts.pending("b") == []

    asyncio.run(main())


def test_close_waits_until_a_cancelled_start_has_ended() -> None:
    """The backend closes after `Starts.close`: a start task it cancelled must have ended
    by then (its cleanup run), not merely been asked to."""

    async def main() -> None:
        starts = Starts(lambda _: None)
        ended: list[str] = []

        async def stuck(batch: Batch) -> BatchResult:
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0.05)  # e.g. a backend call that gives up
                ended.append(batch.endpoint)
            return BatchResult()

        batch = starts.launch("a", 1, ["a-r1-a"], decided=0, since=0, work=stuck)
        await asyncio.sleep(0.01)
        await starts.close(wait_s=0.2)
        assert ended == ["a"] and batch.task.cancelled()

    asyncio.run(main())
