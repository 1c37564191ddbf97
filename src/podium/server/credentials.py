"""The admin token `podium up` makes on a fresh home, and the directory of live tokens.

`ensure_credentials` (only when auth is on): if `PODIUM_HOME/credentials` does not exist,
an admin token (`podium-up-admin`, every project) is made and its string written there,
mode 0600, never overwriting an existing file. The file appears whole or not at all: the
token is written to a temporary file in the home (O_EXCL, 0600, fsync), then committed to
the store, then the file is hard-linked to its name (which fails if the name exists);
if that last step fails the token is revoked, so no admin token lives without its file.
The CLI and the SDK on this machine read it when no token is given. If the file exists but
its token is unknown or revoked, one warning says so and nothing else is made: the operator
revoked it on purpose, or the home's database was replaced. The token is never logged.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from podium.core.access import (
    AuthFailure,
    Scope,
    TokenDirectory,
    issue_token,
)
from podium.core.errors import Unavailable
from podium.core.settings import Settings
from podium.store.db import Database

log = logging.getLogger("podium.server")

ADMIN_TOKEN_NAME = "podium-up-admin"
ADMIN_TOKEN_CREATOR = "podium up"
CREDENTIALS_MODE = 0o600


def ensure_credentials(settings: Settings, db: Database) -> bool:
    """Make the admin token and its credentials file on a fresh home (see the module doc);
    True when it made them. Call with the store migrated, auth on."""
    path = settings.credentials_path
    if path.exists():
        _check_existing(path, db)
        return False
    issued = issue_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        _write_private(temp, issued.token + "\n")
        with db.unit_of_work() as uow:
            uow.tokens.create(
                issued,
                name=ADMIN_TOKEN_NAME,
                scopes=(Scope.ADMIN,),
                projects=None,
                creator=ADMIN_TOKEN_CREATOR,
            )
        try:
            os.link(temp, path)
        except OSError as e:
            _revoke(db, issued.token_id)
            raise Unavailable(
                f"could not create the credentials file {path}: {e.strerror}; the admin "
                f"token made for it ({issued.token_id}) was revoked",
                field="credentials",
            ) from e
    except OSError as e:  # the temporary file: nothing was committed
        raise Unavailable(
            f"could not write the credentials file {path}: {e.strerror}", field="credentials"
        ) from e
    finally:
        temp.unlink(missing_ok=True)
    _sync_folder(path.parent)
    log.info("created an admin token (id %s) for this machine's CLI and SDK", issued.token_id)
    return True


def _write_private(path: Path, text: str) -> None:
    """`text` in a new file (O_EXCL, 0600), on disk before this returns."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, CREDENTIALS_MODE)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _revoke(db: Database, token_id: str) -> None:
    with db.unit_of_work() as uow:
        uow.tokens.revoke(token_id)


def _sync_folder(folder: Path) -> None:
    """The new name on disk too (best effort: not every file system opens folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_token_file(path: Path) -> str | None:
    """The token in a credentials file (first line, stripped), or None if unreadable/empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    return first or None


def _check_existing(path: Path, db: Database) -> None:
    token = read_token_file(path)
    with db.unit_of_work(read_only=True) as uow:
        directory = TokenDirectory(uow.tokens.live_entries())
    result = directory.authenticate(token)
    if isinstance(result, AuthFailure):
        log.warning(
            "the credentials file %s holds no usable token (%s); the CLI and SDK will need "
            "another one (--token / PODIUM_TOKEN), or delete the file and restart to make "
            "a new admin token",
            path,
            result.value,
        )
