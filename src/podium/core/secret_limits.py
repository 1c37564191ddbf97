"""The bound on a secret's value, wherever one is written (`PUT /secrets`, apply's secret
documents): every replica start decrypts the values it names, so they stay small."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

MAX_SECRET_BYTES = 64 * 1024


def _fits(value: str) -> str:
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise ValueError(f"a secret's value is at most {MAX_SECRET_BYTES} bytes (UTF-8)")
    return value


SecretValueStr = Annotated[str, AfterValidator(_fits)]
