"""The autoscaling policy: a pure function from recent load to a desired replica count.

`decide(ctx, state) -> Decision` reads no clock and does no I/O: the controller's glue
(`control.autoscaling`) samples the gateway and the replicas, keeps the recent samples and the
`ScalerState` between passes, and writes the decision. Every scenario is a plain unit test
on fake time. The semantics (Knative KPA-like) are documented in docs/autoscaling.md:

* need = max over signals of ceil(stable-window average / per-replica target); signals are
  concurrency (in flight + held), requests/s (`target_rps`) and `rules` (a rule with its
  own `window` is averaged over that window instead of the stable one);
* panic: the panic-window concurrency reaches 2x what the ready replicas are meant to carry
  -> scale up to the panic figure at once, never down, for at least a stable window;
* up after the need stayed higher for `scale_up_delay`; down to the highest need of the
  last `scale_down_delay`, and never within `stability_period` of the last change;
* zero only with `min_replicas == 0` after `scale_to_zero_after` with nothing in flight,
  held, arriving or starting;
* parked: a count of 0 that the policy did not write was set by the user (scale-to-zero
  now). It stays at zero until a request is held or a task is queued (rule 2); then the
  minimum applies again. Under `min_replicas >= 1` the count in the store is the fact
  (nothing else writes a count below the minimum, and every spec change clamps it back), so
  a restarted controller keeps it; with `min_replicas == 0` the state remembers it
  (`ScalerState.zeroed`: the count changed to 0 under the policy, or a new controller
  found it at 0 without its own decision), so requests still finishing at the draining
  replicas, and the windows' memory of the traffic before, do not undo it;
* requests held while no replica is ready -> at least ceil(held / target) at once;
* at zero, nothing but load arriving now (held requests) brings it up: the windows still
  remember the traffic from before it went to zero;
* the task queue (issue 13) is one more signal: pending + running tasks over the task slots
  of a replica (`slot_share x max_concurrency`), so the replicas whose task share of the
  slots covers the queue; pending tasks with no ready replica come up at once like held
  requests (rule 2), and pending or running tasks count as activity (never to zero under
  them). It takes no part in panic: a job's thousand lines arrive at once by design, and
  a queue waits well enough for the stable window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from podium.core.scaling_spec import ScalingRule, ScalingSpec

PANIC_THRESHOLD = 2.0  # panic when the panic-window load reaches this many times capacity
EPSILON = 1e-9  # ceil(8.000000001 / 4) must still be 2


def rule_key(rule: ScalingRule) -> str:
    """The key of a rule's figure in `Sample.metrics`: `cpu`, `memory`, …, `custom:<gauge>`."""
    return f"custom:{rule.gauge}" if rule.metric == "custom" else rule.metric


def rule_window(rule: ScalingRule, spec: ScalingSpec) -> float:
    """The window a rule's figure is averaged over: its own, else the stable window."""
    return spec.stable_window if rule.window is None else rule.window


def long_rule_windows(spec: ScalingSpec) -> dict[str, float]:
    """The rules averaged over a window longer than the stable one, by `rule_key`, with
    that window (the longest, should two rules read one figure): the glue keeps a sparser
    series of their own for them (`ScalingContext.rule_samples`)."""
    out: dict[str, float] = {}
    for rule in spec.rules:
        own = rule_window(rule, spec)
        if own > spec.stable_window:
            key = rule_key(rule)
            out[key] = max(own, out.get(key, 0.0))
    return out


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of an endpoint. `metrics` holds, per `rule_key`, the figure summed
    over the ready replicas (cpu and memory in %, latency in ms, queue depth in requests)."""

    t: float  # monotonic seconds
    in_flight: int = 0  # requests at replicas through the gateway
    held: int = 0  # requests the gateway holds because no replica is ready
    rps: float = 0.0  # requests/s arriving since the previous sample
    metrics: Mapping[str, float] = field(default_factory=dict)
    pending: int = 0  # tasks queued for the endpoint (issue 13)
    running: int = 0  # tasks a dispatcher holds (also in `in_flight` while at a replica)
    oldest_s: float = 0.0  # how long the oldest pending task has waited

    @property
    def concurrency(self) -> int:
        return self.in_flight + self.held

    @property
    def tasks(self) -> int:
        return self.pending + self.running


@dataclass(frozen=True, slots=True)
class ScalingContext:
    now: float
    spec: ScalingSpec
    desired: int  # the count in the store now
    ready: int  # ready replicas (any revision)
    samples: Sequence[Sample] = ()  # oldest first; the last one is the current load
    # Per rule key, the rule's own series when its window is longer than the stable one
    # (`long_rule_windows`: `samples` reach back one stable window); other rules read
    # their figure in `samples`.
    rule_samples: Mapping[str, Sequence[Sample]] = field(default_factory=dict)
    starting: int = 0  # replicas starting: the endpoint is coming up, so it is not idle
    # Task slots of one replica: `settings.tasks.slot_share x max_concurrency` (the dispatcher
    # runs at most that many of the endpoint's tasks per ready replica).
    task_slots: float = 1.0


@dataclass(frozen=True, slots=True)
class ScalerState:
    """What the policy remembers between passes (kept by the glue, never persisted)."""

    known_desired: int | None = None  # the count after the last decision
    last_change: float | None = None  # when the count last changed (by anyone)
    last_active: float | None = None  # last time anything was in flight, held or arriving
    above_since: float | None = None  # the need has been above the count since then
    below_since: float | None = None  # … below the count since then
    panic_until: float | None = None
    zeroed: bool = False  # the count went to 0 by someone else's hand: parked (docstring)
    # (t, need) of the last scale_down_delay, needs strictly decreasing: the first is the max
    needs: tuple[tuple[float, int], ...] = ()

    def in_panic(self, now: float) -> bool:
        return self.panic_until is not None and now < self.panic_until


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    state: ScalerState
    reason: str | None = None  # set when `desired` differs from the context's count
    data: Mapping[str, object] = field(default_factory=dict)  # the figures behind it

    @property
    def changed(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True, slots=True)
class _Signal:
    name: str
    load: float  # the window's average: in flight, requests/s, or the rule's sum
    replicas: float  # load divided by the per-replica target
    text: str  # "11.2 in flight over 30s, target 4 per replica"

    @property
    def need(self) -> int:
        return _ceil(self.replicas)


def decide(ctx: ScalingContext, state: ScalerState) -> Decision:
    spec, now, cur = ctx.spec, ctx.now, ctx.desired
    lo, hi = spec.min_replicas, spec.max_replicas
    if state.known_desired != cur:  # changed by someone else (deploy, wake, scale): start over
        # (idle time restarts just below; the needs of before cannot matter: a scale-down
        # waits `scale_down_delay` from now, and by then they have left the window)
        # A count of 0 the policy did not write is the user's scale-to-zero: parked.
        state = ScalerState(last_change=now, zeroed=cur == 0)
    latest = ctx.samples[-1] if ctx.samples else Sample(now)
    active = latest.concurrency > 0 or latest.rps > 0 or ctx.starting > 0 or latest.tasks > 0
    last_active = now if active or state.last_active is None else state.last_active
    state = replace(state, last_active=last_active)
    idle_s = now - last_active

    stable = _signals(ctx, spec.stable_window)
    panic = _signals(ctx, spec.panic_window, rules=False)
    best = max(stable, key=lambda s: s.need)
    panic_best = max(panic, key=lambda s: s.need)
    figures: dict[str, object] = {
        "from": cur,
        "ready": ctx.ready,
        "in_flight": latest.in_flight,
        "held": latest.held,
        "idle_s": round(idle_s, 3),
        "stable_window_s": spec.stable_window,
        **{s.name: round(s.load, 3) for s in stable},
        **{f"panic_{s.name}": round(s.load, 3) for s in panic},
        "need": best.need,
        "panic_need": panic_best.need,
    }
    if latest.tasks > 0 or any(s.name == "queue" for s in stable):
        figures.update(
            queued=latest.pending,
            running_tasks=latest.running,
            oldest_queued_s=round(latest.oldest_s, 3),
            task_slots=round(ctx.task_slots, 3),
        )

    def to(st: ScalerState, n: int, why: str, signal: str) -> Decision:
        """Change the count to `n` (never `cur`), saying why."""
        nxt = replace(
            st, known_desired=n, last_change=now, above_since=None, below_since=None, zeroed=False
        )
        data = {**figures, "to": n, "signal": signal}
        return Decision(n, nxt, f"scaled {cur}→{n}: {why}", data)

    def stay(st: ScalerState) -> Decision:
        return Decision(cur, replace(st, known_desired=cur), None, figures)

    parked = cur == 0 and (lo > 0 or state.zeroed)  # scaled to zero by the user (docstring)

    # 1. Bounds changed under us: clamp at once (not up from parked: the user asked for zero).
    if cur > hi:
        return to(state, hi, f"max_replicas is {hi}", "bounds")
    if cur < lo and not parked:
        return to(state, lo, f"min_replicas is {lo}", "bounds")

    # 2. Requests held (or tasks queued) with nothing ready: come up now, no window, no delay.
    if ctx.ready == 0 and latest.held > 0:
        want = min(hi, max(1, lo, _ceil(latest.held / spec.target_concurrency)))
        if want > cur:
            why = (
                f"{latest.held} request(s) held with no ready replica, "
                f"target {spec.target_concurrency:g} per replica"
            )
            return to(state, want, why, "held")
    if ctx.ready == 0 and latest.pending > 0:
        want = min(hi, max(1, lo, _ceil(latest.tasks / ctx.task_slots)))
        if want > cur:
            why = f"{_queue_text(latest)} with no ready replica, {_slots_text(ctx)}"
            return to(state, want, why, "queue")

    # 3. Idle long enough: to zero.
    if lo == 0 and cur > 0 and idle_s >= spec.scale_to_zero_after:
        return to(state, 0, f"idle for {_seconds(idle_s)}", "idle")

    # At zero, only requests arriving now bring it up (rule 2: the gateway holds them): the
    # windows still average the traffic from before it went to zero, which must not.
    # Parked, only rule 2 does: requests still finishing at draining replicas or counted
    # just before the user's scale-to-zero do not undo it.
    if parked or (cur == 0 and latest.concurrency == 0 and latest.rps == 0 and latest.tasks == 0):
        return stay(state)

    # 4. Panic: a burst far beyond capacity scales up at once and holds.
    if panic_best.replicas >= PANIC_THRESHOLD * max(ctx.ready, 1):
        state = replace(state, panic_until=now + spec.stable_window)
    floor = lo if cur == 0 else max(lo, 1)  # only the idle rule goes to zero
    need = min(hi, max(floor, best.need))
    state = replace(state, needs=_recent_needs(state.needs, now, need, spec.scale_down_delay))
    if state.in_panic(now):
        want = min(hi, max(need, panic_best.need))
        if want > cur:
            why = (
                f"panic: {panic_best.text} "
                f"(at least {PANIC_THRESHOLD:g}x the capacity of {ctx.ready} ready)"
            )
            return to(state, want, why, f"panic_{panic_best.name}")
        return stay(state)

    # 5. Stable mode: up after scale_up_delay, down after scale_down_delay and stability.
    if need > cur:
        since = state.above_since if state.above_since is not None else now
        state = replace(state, above_since=since, below_since=None)
        if now - since >= spec.scale_up_delay:
            return to(state, need, best.text, best.name)
        return stay(state)
    if need < cur:
        since = state.below_since if state.below_since is not None else now
        state = replace(state, below_since=since, above_since=None)
        down_to = state.needs[0][1]  # the highest need of the last scale_down_delay
        settled = state.last_change is None or now - state.last_change >= spec.stability_period
        if now - since >= spec.scale_down_delay and settled and down_to < cur:
            why = best.text
            if down_to > need:
                why += f"; {down_to} needed within the last {_seconds(spec.scale_down_delay)}"
            return to(state, down_to, why, best.name)
        return stay(state)
    state = replace(state, above_since=None, below_since=None)
    return stay(state)


# ---------------------------------------------------------------------- helpers


def _signals(ctx: ScalingContext, window: float, *, rules: bool = True) -> list[_Signal]:
    spec, now = ctx.spec, ctx.now
    over = f"over {window:g}s"
    conc = _average(ctx.samples, now, window, lambda s: s.concurrency)
    out = [
        _Signal(
            "concurrency",
            conc,
            conc / spec.target_concurrency,
            f"{_num(conc)} in flight {over}, target {spec.target_concurrency:g} per replica",
        )
    ]
    if spec.target_rps is not None:
        rps = _average(ctx.samples, now, window, lambda s: s.rps)
        out.append(
            _Signal(
                "rps",
                rps,
                rps / spec.target_rps,
                f"{_num(rps)} requests/s {over}, target {spec.target_rps:g} per replica",
            )
        )
    if rules:  # the queue is a stable-window signal only (module docstring)
        tasks = _average(ctx.samples, now, window, lambda s: s.tasks)
        if tasks > 0:
            latest = ctx.samples[-1]
            out.append(
                _Signal(
                    "queue",
                    tasks,
                    tasks / ctx.task_slots,
                    f"{_queue_text(latest)}, {_num(tasks)} queued or running {over}, "
                    f"{_slots_text(ctx)}",
                )
            )
    if rules and ctx.ready > 0:
        for rule in spec.rules:
            key = rule_key(rule)
            own = rule_window(rule, spec)
            series = ctx.rule_samples.get(key, ctx.samples)
            total = _average(series, now, own, _metric(key))
            unit = {"cpu": "%", "memory": "%", "p95_latency_ms": "ms"}.get(rule.metric, "")
            name = f"gauge {rule.gauge}" if rule.metric == "custom" else rule.metric
            out.append(
                _Signal(
                    key,
                    total,
                    total / rule.target,
                    f"{name} {_num(total / ctx.ready)}{unit} per replica on {ctx.ready} "
                    f"over {own:g}s, target {rule.target:g}{unit}",
                )
            )
    return out


def _queue_text(s: Sample) -> str:
    """`12 queued tasks (oldest 3.2 s), 4 running`."""
    text = f"{s.pending} queued task{'' if s.pending == 1 else 's'}"
    if s.pending:
        text += f" (oldest {s.oldest_s:.1f} s)"
    if s.running:
        text += f", {s.running} running"
    return text


def _slots_text(ctx: ScalingContext) -> str:
    return f"{_num(ctx.task_slots)} task slot(s) per replica"


def _metric(key: str) -> Callable[[Sample], float]:
    return lambda s: s.metrics.get(key, 0.0)


def _average(
    samples: Sequence[Sample], now: float, window: float, value: Callable[[Sample], float]
) -> float:
    """Time-weighted average over (now - window, now]: each sample stands for the time
    since the one before it (clipped to the window). A lone sample counts as it is."""
    start = now - window
    total = weight = 0.0
    prev: float | None = None
    last: float | None = None  # the newest sample inside the window
    for s in samples:
        if s.t > start and s.t <= now:
            last = value(s)
            if prev is not None:
                w = s.t - max(prev, start)
                total += last * w
                weight += w
        prev = s.t
    if weight > 0:
        return total / weight
    return last if last is not None else 0.0


def _recent_needs(
    needs: tuple[tuple[float, int], ...], now: float, need: int, keep: float
) -> tuple[tuple[float, int], ...]:
    """A sliding-window maximum: entries older than `keep` go, and so does every entry
    whose need is not above the new one (it can never be the maximum again)."""
    kept = tuple((t, n) for t, n in needs if t > now - keep and n > need)
    return (*kept, (now, need))


def _num(x: float) -> str:
    """11.2, 4.03, 20: two decimals at most, so 4.03 is not shown as a misleading 4.0."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - EPSILON))
