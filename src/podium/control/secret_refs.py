"""The secrets a revision names, decrypted in the controller at a replica's start.

`env_from_secrets` (ENV_VAR: secret) goes into the replica's environment;
`model_source.token_secret` is the Hugging Face token of its `hf://` download,
`model_source.access_key_secret` + `secret_key_secret` the S3 keys of its `s3://` one. Secrets are
the endpoint's project's (the project part of its key). A secret that does not exist fails
the revision with a reason naming it (never a value), and the `required` variable it was to
fill; every value decrypted is added to
the journal's `core.redact.Secrets`, so it becomes `***` in whatever the controller writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.core import redact
from podium.core.access import split_key
from podium.core.env_spec import missing_required
from podium.core.errors import Invalid
from podium.core.spec import EndpointSpec
from podium.store.db import Database
from podium.store.secret_box import SecretBox


@dataclass(frozen=True, slots=True)
class RevisionSecrets:
    env: dict[str, str] = field(default_factory=dict, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    s3_keys: tuple[str, str] | None = field(default=None, repr=False)  # (key id, secret key)
    registry: str | None = field(default=None, repr=False)  # `container.registry_secret`'s


def resolve(
    db: Database, box: SecretBox, known: redact.Secrets, endpoint: str, spec: EndpointSpec
) -> RevisionSecrets:
    """The values the spec of `endpoint` (its key) names. `Invalid` (field: the spec's
    field) when a secret does not exist; `Unavailable` when it cannot be decrypted."""
    wanted = spec.secret_refs()
    if not wanted:
        return RevisionSecrets()
    project = split_key(endpoint)[0]
    ciphertexts: dict[str, str] = {}
    with db.unit_of_work(read_only=True) as uow:
        for where, name in wanted.items():
            if name in ciphertexts:
                continue
            if not uow.secrets.exists(project, name):
                raise Invalid(
                    _required(spec, where)
                    + f"secret {name!r} ({where}) does not exist in project {project!r}",
                    field=where,
                )
            ciphertexts[name] = uow.secrets.get_ciphertext(project, name)
    values = {name: box.decrypt(ct, name=name) for name, ct in ciphertexts.items()}
    known.add(values.values())
    token_name = wanted.get("model_source.token_secret")
    key_id = wanted.get("model_source.access_key_secret")
    secret_key = wanted.get("model_source.secret_key_secret")
    registry = wanted.get("container.registry_secret")
    return RevisionSecrets(
        env={var: values[name] for var, name in spec.env_from_secrets.items()},
        hf_token=None if token_name is None else values[token_name],
        s3_keys=(
            None if key_id is None or secret_key is None else (values[key_id], values[secret_key])
        ),
        registry=None if registry is None else values[registry],
    )


def _required(spec: EndpointSpec, where: str) -> str:
    """ "required variable KEY has no value: " when `where` gives a required variable."""
    key = where.removeprefix("env_from_secrets.")
    if key == where or key not in missing_required(spec.env, {}):
        return ""
    return f"required variable {key} has no value: "
