"""Each endpoint's callback signing key (issue 13): 32 random bytes, made on first use,
stored encrypted with the server's secret box (`store.secret_box`, the key of secrets).

The callback sender signs every delivery with it (`core.callbacks.sign`); the endpoint's
owner reads it (`GET /api/v1/endpoints/{name}/callback-key`, scope `deploy`) to check the
signatures, and rotates it when it leaked. Deleting the endpoint deletes its key
(`EndpointRepo.delete`). The key is never logged: only its ciphertext is in the store.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.core.clock import Clock
from podium.core.errors import Unavailable
from podium.store.secret_box import SecretBox
from podium.store.tables import CallbackKeyRow, SecretRow

KEY_BYTES = 32
_NAME = "callback key of endpoint {}"  # how a key that cannot be decrypted is named


class CallbackKeyRepo:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._s = session
        self._clock = clock

    def get_or_create(self, endpoint: str, box: SecretBox) -> bytes:
        """The endpoint's key, made now when it has none (two creators at once agree on
        the first one stored)."""
        row = self._s.get(CallbackKeyRow, endpoint)
        if row is not None:
            return _open(box, row.ciphertext, endpoint)
        key = secrets.token_bytes(KEY_BYTES)
        ciphertext = box.encrypt(key.hex(), may_create=not self._any_encrypted())
        try:
            with self._s.begin_nested():
                self._s.add(
                    CallbackKeyRow(
                        endpoint=endpoint,
                        ciphertext=ciphertext,
                        created_at=self._clock.now().timestamp(),
                    )
                )
                self._s.flush()
        except IntegrityError:  # another request made it first: use that one
            row = self._s.get(CallbackKeyRow, endpoint, populate_existing=True)
            if row is None:  # pragma: no cover - deleted again in between
                raise
            return _open(box, row.ciphertext, endpoint)
        return key

    def rotate(self, endpoint: str, box: SecretBox) -> bytes:
        """A new key for the endpoint; deliveries from now on are signed with it."""
        key = secrets.token_bytes(KEY_BYTES)
        ciphertext = box.encrypt(key.hex(), may_create=not self._any_encrypted())
        row = self._s.get(CallbackKeyRow, endpoint, with_for_update=True)
        now = self._clock.now().timestamp()
        if row is None:
            self._s.add(CallbackKeyRow(endpoint=endpoint, ciphertext=ciphertext, created_at=now))
        else:
            row.ciphertext = ciphertext
            row.created_at = now
        self._s.flush()
        return key

    def get(self, endpoint: str, box: SecretBox) -> bytes | None:
        """The endpoint's key, or None when it has none yet (the sender then makes one)."""
        row = self._s.get(CallbackKeyRow, endpoint)
        return None if row is None else _open(box, row.ciphertext, endpoint)

    def delete_for(self, endpoint: str) -> None:
        self._s.execute(delete(CallbackKeyRow).where(CallbackKeyRow.endpoint == endpoint))

    def _any_encrypted(self) -> bool:
        """Whether anything is stored encrypted already: then the secret box's key file
        must exist, and a missing one is an error rather than a new key."""
        keys = self._s.scalar(select(func.count()).select_from(CallbackKeyRow))
        return bool(keys) or bool(self._s.scalar(select(func.count()).select_from(SecretRow)))


def _open(box: SecretBox, ciphertext: str, endpoint: str) -> bytes:
    try:
        return bytes.fromhex(box.decrypt(ciphertext, name=_NAME.format(endpoint)))
    except ValueError as e:  # pragma: no cover - only this module writes it
        raise Unavailable(
            f"the callback key of endpoint {endpoint!r} is corrupt; rotate it",
            field="callback_key",
        ) from e
