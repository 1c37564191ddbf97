"""What a replica inherits of the server's environment.

A replica runs user code, so it does not inherit the server's secrets: no `PODIUM_*`
variable (the database URL, a `PODIUM_TOKEN`, paths, settings) except those a replica reads
itself (`REPLICA_PODIUM_VARS`), not the server's Hugging Face token, and no `AWS_*` variable
(the server's own S3 credentials, session tokens, profiles, container and web-identity
credential addresses: a replica must not act as the server on AWS). An endpoint that needs a
token or keys names secrets (`model_source.token_secret`, `env_from_secrets`). The backend
lays the endpoint's `env` and secrets over it, then what it sets itself.

What this cannot withhold: files. A replica runs as the server's user, so it can read
`~/.aws/credentials` or `~/.cache/huggingface/token` (docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from podium.core.log_format import ENV_LOG_FORMAT
from podium.replica import memory

PODIUM_VAR_PREFIX = "PODIUM_"
# The GPUs a replica may use: set by the backend for every replica (`gpu_inventory`).
ENV_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
# The log format (text or JSON lines) is the server's: the replica reads it (main).
REPLICA_PODIUM_VARS = frozenset({memory.ENV_MEMORY_LIMIT, memory.ENV_MEMORY_RLIMIT, ENV_LOG_FORMAT})
WITHHELD_VARS = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
# Every variable botocore (or the AWS CLI) reads starts so: keys, AWS_PROFILE,
# AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN...
WITHHELD_PREFIXES = ("AWS_",)


def inherited_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`environ` (`os.environ` by default) without what a replica must not see."""
    source = os.environ if environ is None else environ
    return {
        k: v
        for k, v in source.items()
        if k not in WITHHELD_VARS
        and not k.startswith(WITHHELD_PREFIXES)
        and (not k.startswith(PODIUM_VAR_PREFIX) or k in REPLICA_PODIUM_VARS)
    }
