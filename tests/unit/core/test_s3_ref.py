"""`s3://BUCKET[/PREFIX][@DIGEST]` references: S3's bucket rules, prefixes that stay folders."""

from __future__ import annotations

import pytest

from podium.core.errors import Invalid
from podium.core.spec import (
    EndpointSpec,
    S3Ref,
    derive_name,
    model_version,
    parse_model_ref,
)

DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("text", "bucket", "prefix", "digest"),
    [
        ("s3://models/iris", "models", "iris", None),
        ("s3://models/iris/", "models", "iris", None),
        ("s3://my.bucket-1/team/iris/v3", "my.bucket-1", "team/iris/v3", None),
        ("s3://abc", "abc", "", None),
        ("s3://abc/", "abc", "", None),
        (f"s3://models/iris@{DIGEST}", "models", "iris", DIGEST),
        ("s3://models/a_b/c~d/e+f=g,h:i!j-k.l", "models", "a_b/c~d/e+f=g,h:i!j-k.l", None),
    ],
)
def test_valid_references_parse(text: str, bucket: str, prefix: str, digest: str | None) -> None:
    ref = parse_model_ref(text)
    assert ref == S3Ref(bucket, prefix, digest)
    assert parse_model_ref(str(ref)) == ref  # the normal form parses to itself


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("s3://ab/x", "not an S3 reference"),  # 2 characters
        ("s3://" + "a" * 64 + "/x", "not an S3 reference"),
        ("s3://Models/x", "not an S3 reference"),  # uppercase
        ("s3://-models/x", "not an S3 reference"),
        ("s3://models-/x", "not an S3 reference"),
        ("s3://my_bucket/x", "not an S3 reference"),
        ("s3://my..bucket/x", "no two dots"),
        ("s3://my.-bucket/x", "no two dots"),
        ("s3://192.168.1.10/x", "IP address"),
        ("s3://xn--models/x", "reserves"),
        ("s3://models-s3alias/x", "reserves"),
        ("s3://models/../etc", "segments"),
        ("s3://models/a/./b", "segments"),
        ("s3://models/a//b", "not an S3 reference"),
        ("s3:///x", "not an S3 reference"),
        ("s3://models/a b", "not an S3 reference"),
        ("s3://models/x@abc", "not an S3 reference"),  # a pin is 64 hex digits
        ("s3://models/x?versionId=1", "not an S3 reference"),
        ("s3://models/" + "a" * 600, "at most 512"),
    ],
)
def test_invalid_references_say_why(text: str, says: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_model_ref(text, field="model")
    assert says in str(caught.value)
    assert caught.value.field == "model"


def test_the_spec_accepts_an_s3_model_and_names_its_secrets() -> None:
    spec = EndpointSpec.model_validate(
        {
            "name": "iris",
            "model": "s3://models/iris",
            "framework": "sklearn",
            "model_source": {"access_key_secret": "s3-id", "secret_key_secret": "s3-key"},
        }
    )
    assert spec.secret_refs() == {
        "model_source.access_key_secret": "s3-id",
        "model_source.secret_key_secret": "s3-key",
    }


def test_the_spec_wants_both_s3_keys_or_neither() -> None:
    with pytest.raises(ValueError, match="give both access_key_secret and secret_key_secret"):
        EndpointSpec.model_validate(
            {
                "name": "iris",
                "model": "s3://models/iris",
                "framework": "sklearn",
                "model_source": {"access_key_secret": "s3-id"},
            }
        )


def test_names_and_versions_of_s3_models() -> None:
    assert derive_name("s3://models/team/iris-v3", "x7k") == "iris-v3-x7k"
    assert derive_name("s3://models", "x7k") == "models-x7k"
    assert model_version("s3://models/iris") is None
    assert model_version(f"s3://models/iris@{DIGEST}") == DIGEST[:12]
