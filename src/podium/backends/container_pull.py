"""Getting a container replica's image onto this node, as its `pull_policy` says.

The engine is only ever asked about `qualified(image)` (`core.container_spec`): the
registry spelled out, so the image pulled, the image inspected, the image run and the
registry the credentials are for are one and the same.

`always`: pull before every start (a moving tag is refreshed). `if_not_present`: pull only
when `image inspect` does not find it. `never`: a missing image is a `LoadError` naming the
image and the policy.

A failed pull (its message names the image, the policy and the engine's last error line,
registry credentials taken out: `container_auth.redact`):

- with `always`, when the node has the image from before: a warning in the server's log,
  and the replica runs the image the node has (a registry that is down does not stop an
  endpoint whose image is here, as Kubernetes' `Always` does not);
- when the registry could not be reached (no answer within
  `ContainerSettings.pull_timeout_s`, a refused or reset connection, a name that does not
  resolve, a registry answering 5xx or 429): `Unavailable`, so the controller retries the
  start with its crash backoff;
- otherwise (not found, unauthorized, denied, an invalid reference…): `LoadError`, so the
  endpoint fails at once instead of restarting a replica that cannot start.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from podium.backends.container_auth import RegistryLogin, parse_login, pull_auth, redact
from podium.backends.container_engine import ContainerEngine
from podium.core.container_spec import PullPolicy, qualified
from podium.core.errors import LoadError, Unavailable

log = logging.getLogger(__name__)

FIELD = "container.image"
# The engine's words for a registry that was not reached or could not answer now (Go's
# net errors, HTTP 5xx and 429 as podman and docker print them): worth a retry.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|timed? ?out|deadline exceeded"
    r"|no such host|temporary failure in name resolution|server misbehaving"
    r"|network is unreachable|no route to host|eof\b|tls handshake"
    r"|too ?many ?requests|\b429\b|\b50[0234]\b|service unavailable|bad gateway",
    re.IGNORECASE,
)
# ...unless it says the image or the access is wrong, which no retry changes.
_PERMANENT = re.compile(
    r"unauthorized|authentication required|denied|forbidden|manifest unknown|not found"
    r"|name unknown|invalid reference|repository name must|no image found",
    re.IGNORECASE,
)


def ensure_image(
    engine: ContainerEngine,
    image: str,
    policy: PullPolicy,
    credentials: str | None,
    run_dir: Path,
) -> bool:
    """Make sure the node has `image` (module docstring); True when it was pulled."""
    ref = qualified(image)
    if policy is PullPolicy.NEVER:
        if not engine.image_present(ref):
            raise LoadError(
                f"image {ref} is not on this node and pull_policy is never", field=FIELD
            )
        return False
    if policy is PullPolicy.IF_NOT_PRESENT and engine.image_present(ref):
        return False
    try:
        pull(engine, ref, policy, credentials, run_dir)
    except (LoadError, Unavailable) as e:
        if policy is PullPolicy.ALWAYS and engine.image_present(ref):
            log.warning("%s; running the image this node has", e)
            return False
        raise
    return True


def pull(
    engine: ContainerEngine,
    image: str,
    policy: PullPolicy,
    credentials: str | None,
    run_dir: Path,
) -> None:
    """`ENGINE pull qualified(IMAGE)` with the credentials' private auth file; on failure
    `Unavailable` when the registry could not be reached, else `LoadError` (module
    docstring)."""
    ref = qualified(image)
    login = parse_login(credentials, ref) if credentials is not None else None
    timeout = engine.settings.pull_timeout_s
    with pull_auth(login, engine.name, run_dir) as auth:
        try:
            done = engine.call(["pull", *auth.args, ref], timeout_s=timeout, env=auth.env)
        except Unavailable as e:  # no answer in time, or the engine cannot be run
            raise _failed(ref, policy, str(e), login, transient=True) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        transient = bool(_TRANSIENT.search(last)) and not _PERMANENT.search(last)
        raise _failed(ref, policy, last, login, transient=transient)


def _failed(
    image: str, policy: PullPolicy, why: str, login: RegistryLogin | None, *, transient: bool
) -> LoadError | Unavailable:
    message = (
        f"image {image} could not be pulled (pull_policy {policy.value}): {redact(why, login)}"
    )
    return Unavailable(message, field=FIELD) if transient else LoadError(message, field=FIELD)
