"""Secrets encrypted at rest: `cryptography.fernet.Fernet` with one key file per home.

The key lives at `settings.secret_key_path` (`PODIUM_HOME/secret.key`): 44 URL-safe base64
characters, created on first use with mode 0600: written whole to a new file
(`O_CREAT | O_EXCL`), then linked to its name, so two processes creating it at once agree
on one key and nobody reads half of one. It is never logged.

A missing key is created only when no secret is stored yet (`encrypt(..., may_create=True)`):
once secrets exist, a missing or corrupt key file is an error that says so (`Unavailable`,
field "secret_key"), never a new key that would make the stored secrets unreadable. A
ciphertext the key cannot open (the key file was replaced) is an error naming the secret.

Used by the API (to encrypt on PUT) and by the controller (to decrypt at a replica's start),
in their own processes or threads: nothing here is cached between calls, so a key written by
another process is seen at once.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path
from typing import Any

from podium.core.errors import Unavailable

_KEY_LEN = 32  # bytes, once decoded


class SecretBox:
    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path

    def encrypt(self, value: str, *, may_create: bool) -> str:
        """The ciphertext of `value` (text). `may_create`: no secret is stored yet, so a
        missing key file may be created."""
        return str(self._fernet(may_create=may_create).encrypt(value.encode()).decode("ascii"))

    def decrypt(self, ciphertext: str, *, name: str) -> str:
        """The value of secret `name` (named in the error when it cannot be opened)."""
        from cryptography.fernet import InvalidToken

        fernet = self._fernet(may_create=False)
        try:
            return str(fernet.decrypt(ciphertext.encode("ascii")).decode())
        except (InvalidToken, UnicodeError) as e:
            raise Unavailable(
                f"secret {name!r} cannot be decrypted with the key at {self.key_path} "
                "(was the key file replaced?); set the secret again",
                field="secret_key",
            ) from e

    # ------------------------------------------------------------------ the key

    def _fernet(self, *, may_create: bool) -> Any:
        from cryptography.fernet import Fernet

        key = self._read()
        if key is None:
            if not may_create:
                raise Unavailable(
                    f"the secret key file {self.key_path} is missing: the stored secrets "
                    "cannot be read (restore the file, or delete and set the secrets again)",
                    field="secret_key",
                )
            key = self._create(Fernet.generate_key())
        return Fernet(key)

    def _read(self) -> bytes | None:
        try:
            key = self.key_path.read_bytes().strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise Unavailable(
                f"the secret key file {self.key_path} cannot be read: {e.strerror}",
                field="secret_key",
            ) from e
        try:
            if len(base64.urlsafe_b64decode(key)) == _KEY_LEN:
                return key
        except (binascii.Error, ValueError):
            pass
        raise Unavailable(
            f"the secret key file {self.key_path} is corrupt (not a Fernet key)",
            field="secret_key",
        )

    def _create(self, key: bytes) -> bytes:
        """Write a new key (0600); if another process wrote one first, use that one.

        The key is written whole to a file of its own (`O_CREAT | O_EXCL`, 0600) and then
        hard-linked to its name, which fails if the name exists: a reader never sees half a
        key, and two creators never both win."""
        folder = self.key_path.parent
        temp = folder / f".{self.key_path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fd, key + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, self.key_path)
            except FileExistsError:
                found = self._read()
                if found is None:  # pragma: no cover - deleted again in between
                    raise Unavailable(f"the secret key file {self.key_path} vanished") from None
                return found
        except OSError as e:
            raise Unavailable(
                f"could not create the secret key file {self.key_path}: {e.strerror}",
                field="secret_key",
            ) from e
        finally:
            temp.unlink(missing_ok=True)
        return key
