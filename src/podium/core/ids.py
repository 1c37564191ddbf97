"""Typed identifiers and the rules for user-chosen names."""

from __future__ import annotations

import re
import secrets
from typing import NewType

from podium.core.errors import Invalid

ReplicaId = NewType("ReplicaId", str)
RequestId = NewType("RequestId", str)

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,47}$")
NAME_RULE = "lowercase letters, digits and hyphens, 3 to 48 characters, starting with a letter"


# A project's name is part of every key in it (`core.access.endpoint_key`): short enough
# that `project.name` fits where a name fits (64 characters).
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{2,14}$")
PROJECT_RULE = "lowercase letters, digits and hyphens, 3 to 15 characters, starting with a letter"


def check_project(value: str, field: str = "project") -> str:
    if not PROJECT_RE.match(value):
        raise Invalid(f"{value!r} is not a valid project name: use {PROJECT_RULE}", field=field)
    return value


def check_name(value: str, field: str = "name") -> str:
    if not NAME_RE.match(value):
        raise Invalid(f"{value!r} is not a valid name: use {NAME_RULE}", field=field)
    return value


def new_replica_id(endpoint: str, revision: int) -> ReplicaId:
    return ReplicaId(f"{endpoint}-r{revision}-{secrets.token_hex(3)}")


def new_request_id() -> RequestId:
    return RequestId(secrets.token_hex(8))
