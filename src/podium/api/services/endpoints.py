"""Endpoint changes a user asks for: create, update, scale, pause, resume, wake, delete.

Each change is one unit of work (spec, status and the event that says why, together);
the controller is woken only after it committed, so it never reads the state before it.
The controller does the rest (starting, rolling out, stopping, removing the row).
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from podium.api.services import views
from podium.api.services.checks import (
    check_runnable,
    check_spec,
    clamp,
    resolve_model,
)
from podium.api.services.quotas import check_quota, endpoint_usage
from podium.core.access import endpoint_key
from podium.core.errors import Conflict, Invalid
from podium.core.phases import EndpointStatus, EventKind
from podium.core.routing import RoutingSource, endpoint_route
from podium.core.schemas import EndpointPublic
from podium.core.settings import Settings
from podium.core.spec import (
    REVISION_FIELDS,
    EndpointCreate,
    EndpointSpec,
    EndpointUpdate,
    HfRef,
    S3Ref,
    ScaleRequest,
    ScalingSpec,
    derive_name,
    parse_model_ref,
)
from podium.runtimes.registry import serves_openai
from podium.store import Database, UnitOfWork
from podium.store.records import EndpointRecord

log = logging.getLogger(__name__)

_S = EndpointStatus
_SUFFIX_CHARS = string.ascii_lowercase + string.digits


class EndpointService:
    """`routing` (the gateway's table, when the API runs next to it): a created endpoint is
    routed at once (its requests are held until a replica is ready, never a 404), a deleted
    one leaves at once; the controller's next table agrees."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        wake: Callable[[str | None], None],
        routing: RoutingSource | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._wake = wake
        self._routing = routing

    # ------------------------------------------------------------------ create / update

    def create(self, create: EndpointCreate) -> EndpointPublic:
        given = create.name
        if given is None:  # as the hosted products do: a name made from the model
            suffix = "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))
            given = derive_name(create.model, suffix)
            create = create.model_copy(update={"name": given})
        name = endpoint_key(create.project, given)
        with self._writing(name) as uow:
            # Checked here too, before the model is looked up in the project, so a missing
            # project is reported as such (field "project", not "model 'iris' not found in
            # project 'ghost'"); the store's check, under the project's lock, is the one that
            # holds against a concurrent delete.
            uow.projects.require(create.project)
            spec = with_framework(uow, create)
            model_ref = check_spec(uow, self._settings, spec)
            low = spec.scaling.min_replicas
            status = _S.SCALED_TO_ZERO if low == 0 else _S.PENDING
            after = endpoint_usage(self._settings, status, low, spec)
            check_quota(uow, self._settings, spec.project, name, after)
            rec = uow.endpoints.create(
                spec,
                model_ref=model_ref,
                status=status,
                desired_replicas=low,
            )
            uow.events.add(
                name,
                EventKind.SPEC,
                f"created endpoint {name} (revision 1, model {model_ref})",
                {"revision": 1, "model_ref": model_ref},
            )
            out = views.endpoint(uow, self._settings, rec)
        if self._routing is not None:  # committed: the gateway may hold its requests now
            self._routing.add(
                endpoint_route(
                    spec,
                    rec.status,
                    created=int(rec.created_at.timestamp()),
                    openai=serves_openai(spec.framework, spec.task),
                )
            )
        return out

    def update(self, name: str, update: EndpointUpdate) -> EndpointPublic:
        """Apply a partial change. A new revision is made when a field that needs new
        replicas changed (`REVISION_FIELDS`) or when the update names a model that resolves
        to another version than the current revision's (e.g. `iris` now means `iris:2`).
        Without `model` in the update, the current revision's model is kept."""
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            old, new = rec.spec, update.apply(rec.spec)
            check_runnable(uow, self._settings, new)
            changed = [f for f in EndpointSpec.model_fields if getattr(old, f) != getattr(new, f)]
            model_ref = rec.model_ref
            if "model" in update.model_fields_set and new.model is not None:
                model_ref = target_model(uow, rec, new)
            model_moved = model_ref != rec.model_ref
            needs_revision = model_moved or any(
                f in REVISION_FIELDS and f != "model" for f in changed
            )
            if not changed and not model_moved:
                return views.endpoint(uow, self._settings, rec)
            low, high = new.scaling.min_replicas, new.scaling.max_replicas
            desired = clamp(rec.desired_replicas, low, high)
            status = _S.PENDING if rec.status is _S.FAILED else rec.status
            after = endpoint_usage(self._settings, status, desired, new)
            check_quota(uow, self._settings, rec.project, name, after)
            out = uow.endpoints.update_spec(
                name,
                new,
                new_revision_model_ref=model_ref if needs_revision else None,
                desired_replicas=desired,
            )
            message = _update_message(rec, out, changed, model_moved, needs_revision)
            data: dict[str, Any] = {
                "changed": changed,
                "revision": out.revision,
                "new_revision": needs_revision,
                "model_ref": out.model_ref,
            }
            uow.events.add(name, EventKind.SPEC, message, data)
            out = _retry_if_failed(uow, out)
            if needs_revision:
                out = _rolling_out(uow, out)
            return views.endpoint(uow, self._settings, out)

    def scale(self, name: str, bounds: ScaleRequest) -> EndpointPublic:
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            low, high = bounds.min_replicas, bounds.max_replicas
            scaling = ScalingSpec.model_validate(
                {**rec.spec.scaling.model_dump(), "min_replicas": low, "max_replicas": high}
            )
            spec = rec.spec.model_copy(update={"scaling": scaling})
            desired = clamp(rec.desired_replicas, low, high)
            status = _S.PENDING if rec.status is _S.FAILED else rec.status
            after = endpoint_usage(self._settings, status, desired, spec)
            check_quota(uow, self._settings, rec.project, name, after)
            out = uow.endpoints.update_spec(
                name, spec, new_revision_model_ref=None, desired_replicas=desired
            )
            uow.events.add(
                name,
                EventKind.SCALED,
                f"scale bounds set to min {low}, max {high} by user",
                {"min_replicas": low, "max_replicas": high, "desired_replicas": desired},
            )
            out = _retry_if_failed(uow, out)
            return views.endpoint(uow, self._settings, out)

    # ------------------------------------------------------------------ status changes

    def pause(self, name: str) -> EndpointPublic:
        """Stop serving, keeping the desired count for `resume`. Pausing a paused endpoint
        changes nothing."""
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            if rec.status != _S.PAUSED:
                uow.endpoints.set_status(name, _S.PAUSED, reason="paused by user")
                uow.events.add(name, EventKind.SPEC, f"paused endpoint {name}")
            return views.endpoint(uow, self._settings, uow.endpoints.get(name))

    def resume(self, name: str) -> EndpointPublic:
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            if rec.status != _S.PAUSED:
                raise Conflict(
                    f"endpoint {name!r} is {rec.status.value}, not paused: only a paused "
                    "endpoint can be resumed",
                    field="status",
                )
            # A resume ends a scale-to-zero from before the pause: the minimum applies again.
            s = rec.spec.scaling
            desired = clamp(rec.desired_replicas, s.min_replicas, s.max_replicas)
            after = endpoint_usage(self._settings, _S.PENDING, desired, rec.spec)
            check_quota(uow, self._settings, rec.project, name, after)
            if desired != rec.desired_replicas:
                uow.endpoints.set_desired(name, desired)
            uow.endpoints.set_status(name, _S.PENDING, reason="resumed by user")
            uow.events.add(name, EventKind.SPEC, f"resumed endpoint {name}")
            return views.endpoint(uow, self._settings, uow.endpoints.get(name))

    def wake(self, name: str) -> EndpointPublic:
        """Bring the endpoint up ahead of traffic: desired becomes at least max(1,
        min_replicas) (within max_replicas). The autoscaler scales it back to zero after
        `scale_to_zero_after` without requests. Paused and failed endpoints do not wake."""
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            if rec.status == _S.PAUSED:
                raise Conflict(
                    f"endpoint {name!r} is paused and does not wake: resume it first",
                    field="status",
                )
            if rec.status == _S.FAILED:
                raise Conflict(
                    f"endpoint {name!r} failed ({rec.status_reason or 'no reason recorded'}): "
                    "change it with an update to try again",
                    field="status",
                )
            s = rec.spec.scaling
            old = rec.desired_replicas
            want = clamp(max(old, 1, s.min_replicas), s.min_replicas, s.max_replicas)
            if want != old:
                after = endpoint_usage(self._settings, rec.status, want, rec.spec)
                check_quota(uow, self._settings, rec.project, name, after)
                uow.endpoints.set_desired(name, want)
                uow.events.add(
                    name,
                    EventKind.SCALED,
                    f"scaled {old}→{want}: woken by user",
                    {"from": old, "to": want, "signal": "wake"},
                )
            if rec.status in (_S.SCALED_TO_ZERO, _S.PENDING) and want > 0:
                # The answer says what happens next, not the state before the wake.
                _set_status(uow, rec.name, rec.status, _S.INITIALIZING, "woken by user")
            return views.endpoint(uow, self._settings, uow.endpoints.get(name))

    def scale_to_zero(self, name: str) -> EndpointPublic:
        """Stop every replica now; unlike `pause`, the next request wakes the endpoint (it is
        held while a replica starts), and then `min_replicas` applies again. Scaling a
        paused, failed or deleting endpoint to zero is a 409."""
        with self._writing(name) as uow:
            rec = _require_live(uow, name)
            if rec.status in (_S.PAUSED, _S.FAILED):
                raise Conflict(
                    f"endpoint {name!r} is {rec.status.value}: it has no replicas to stop",
                    field="status",
                )
            old = rec.desired_replicas
            if old != 0:
                uow.endpoints.set_desired(name, 0)
                uow.events.add(
                    name,
                    EventKind.SCALED,
                    f"scaled {old}→0: scaled to zero by user (the next request wakes it)",
                    {"from": old, "to": 0, "signal": "user_zero"},
                )
            return views.endpoint(uow, self._settings, uow.endpoints.get(name))

    def delete(self, name: str) -> EndpointPublic:
        """Mark the endpoint deleting; the controller stops its replicas and removes it.
        Deleting twice is not an error."""
        with self._writing(name) as uow:
            rec = uow.endpoints.get(name)
            if rec.status != _S.DELETING:
                uow.endpoints.set_status(name, _S.DELETING, reason="deleted by user")
                uow.events.add(name, EventKind.SPEC, f"deleting endpoint {name}")
                # Its queued tasks die with it: a re-created endpoint of the same name
                # must not run them (their callbacks say so).
                uow.task_views.cancel_endpoint(name, "its endpoint was deleted")
            out = views.endpoint(uow, self._settings, uow.endpoints.get(name))
        if self._routing is not None:  # committed: new requests get a 404 from now on
            self._routing.remove(name)
        return out

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def _writing(self, name: str) -> Iterator[UnitOfWork]:
        """A unit of work; once it committed, wake the controller for `name`."""
        with self._db.unit_of_work() as uow:
            yield uow
        try:
            self._wake(name)
        except Exception:  # the change is stored; the controller's next tick picks it up
            log.exception("could not wake the controller for endpoint %s", name)


def with_framework(uow: UnitOfWork, create: EndpointCreate) -> EndpointSpec:
    """The spec to store: without `framework`, the one the model version records."""
    if create.framework is not None:
        return create.with_framework(create.framework)
    ref = parse_model_ref(create.model)
    if isinstance(ref, HfRef):
        raise Invalid(
            f"{create.model} is a Hugging Face model: give `framework` (e.g. transformers)",
            field="framework",
        )
    if isinstance(ref, S3Ref):
        raise Invalid(
            f"{create.model} is an S3 model: give `framework` (e.g. sklearn)", field="framework"
        )
    version = uow.models.get(endpoint_key(create.project, ref.name), ref.version)
    if not version.framework:
        raise Invalid(
            f"model {version.bare_ref} does not record its framework: give `framework`",
            field="framework",
        )
    try:
        return create.with_framework(version.framework)
    except ValidationError as e:  # e.g. `command` needs its own block: say which field
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "framework"
        raise Invalid(
            f"with the framework of model {version.bare_ref} ({version.framework}): {first['msg']}",
            field=field,
        ) from None


def _rolling_out(uow: UnitOfWork, rec: EndpointRecord) -> EndpointRecord:
    """A new revision with replicas of an older one still up is a rollout: the answer (and
    the status) says `updating` from the moment it started, never the old `running`."""
    if rec.desired_replicas == 0 or rec.status in (_S.PAUSED, _S.UPDATING):
        return rec
    if not uow.replicas.list(endpoint=rec.name):
        return rec
    _set_status(uow, rec.name, rec.status, _S.UPDATING, f"rolling out revision {rec.revision}")
    return uow.endpoints.get(rec.name)


def _set_status(
    uow: UnitOfWork, name: str, old: EndpointStatus, new: EndpointStatus, reason: str
) -> None:
    """A status change made by the API, with its event (as the controller writes them)."""
    uow.endpoints.set_status(name, new, reason=reason)
    uow.events.add(
        name,
        EventKind.STATUS,
        f"status {old.value} → {new.value}: {reason}",
        {"from": old.value, "to": new.value, "reason": reason},
    )


def _require_live(uow: UnitOfWork, name: str) -> EndpointRecord:
    rec = uow.endpoints.get(name)
    if rec.status == _S.DELETING:
        raise Conflict(f"endpoint {name!r} is being deleted", field="status")
    return rec


def target_model(uow: UnitOfWork, rec: EndpointRecord, new: EndpointSpec) -> str:
    """The model ref the endpoint should serve after the update.

    An `hf://` ref is pinned later by the controller, so the stored one may carry a
    revision the user never wrote: it counts as moved only when the user's text changed."""
    if isinstance(parse_model_ref(new.model), HfRef | S3Ref) and new.model == rec.spec.model:
        return rec.model_ref
    return resolve_model(uow, new.model, rec.project)


def _update_message(
    old: EndpointRecord,
    new: EndpointRecord,
    changed: list[str],
    model_moved: bool,
    new_revision: bool,
) -> str:
    parts: list[str] = []
    if model_moved:
        parts.append(f"model {old.model_ref} → {new.model_ref}")
    for field in changed:
        if field == "model":
            if not model_moved:
                parts.append(f"model {new.spec.model} (still {new.model_ref})")
            continue
        if field == "scaling":
            s = new.spec.scaling
            parts.append(f"scaling min {s.min_replicas}, max {s.max_replicas}")
        else:
            parts.append(field)
    what = "; ".join(parts) or "spec"
    if new_revision:
        return f"updated endpoint {new.name} (revision {new.revision}: {what})"
    return f"updated endpoint {new.name}: {what}"


def _retry_if_failed(uow: UnitOfWork, rec: EndpointRecord) -> EndpointRecord:
    """A user's change to a failed endpoint is a new attempt: it goes back to pending in the
    same transaction, so nobody reads the old failure as the outcome of the change."""
    if rec.status is not _S.FAILED:
        return rec
    uow.endpoints.set_status(rec.name, _S.PENDING, reason="changed by user; trying again")
    uow.events.add(
        rec.name,
        EventKind.STATUS,
        "status failed → pending: changed by user; trying again",
        {"from": "failed", "to": "pending"},
    )
    return uow.endpoints.get(rec.name)
