"""hf:// resolution against a real huggingface_hub cache layout built on disk.

The layout is the one huggingface_hub's own `snapshot_download` reads (see
`huggingface_hub/_snapshot_download.py` and `file_download.py`):

    <cache>/models--ORG--NAME/blobs/<etag>                 file contents
    <cache>/models--ORG--NAME/snapshots/<sha>/<file>       relative symlinks to ../../blobs/<etag>
    <cache>/models--ORG--NAME/refs/<branch or tag>         the commit sha, no newline
    <cache>/models--ORG--NAME/trees/<sha>.json             optional file listing of the commit

Every test runs with HF_HUB_OFFLINE=1: nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from podium.artifacts.sources import NodeCache
from podium.core.errors import Invalid, NotFound, Unavailable
from podium.core.spec import HfRef, parse_model_ref

SHA = "0123456789abcdef0123456789abcdef01234567"
OLD_SHA = "fedcba9876543210fedcba9876543210fedcba98"
FILES = {
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": b"\x00" * 64,
    "tokenizer/vocab.txt": b"[PAD]\n[UNK]\n",
}


def populate(
    cache: Path,
    repo_id: str,
    sha: str = SHA,
    files: dict[str, bytes] = FILES,
    refs: dict[str, str] | None = None,
    listing: list[str] | None = None,
) -> Path:
    """Write one cached commit of `repo_id` the way huggingface_hub does; return its snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / sha
    for rel, data in files.items():
        etag = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        pointer = snapshot / rel
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(Path(*[".."] * (rel.count("/") + 2), "blobs", etag))
    for ref, target in (refs if refs is not None else {"main": sha}).items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(target)
    if listing is not None:
        (repo / "trees").mkdir(exist_ok=True)
        (repo / "trees" / f"{sha}.json").write_text(
            json.dumps(
                {
                    "format_version": 1,
                    "files": {p: {"size": 1, "blob_id": "0" * 40} for p in listing},
                }
            )
        )
    return snapshot


def offline(tmp_path: Path, **env: str) -> NodeCache:
    return NodeCache(tmp_path / "cache", env={"HF_HUB_OFFLINE": "1", **env})


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "hf"  # the default: cache_dir / "hf"


def test_resolve_latest_from_the_cache(tmp_path: Path, hub_cache: Path) -> None:
    snapshot = populate(hub_cache, "org/name")
    resolved = offline(tmp_path).resolve_hf(HfRef("org/name"))
    assert resolved.path == snapshot.resolve()
    assert resolved.revision == SHA
    assert resolved.ref == f"hf://org/name@{SHA}"
    assert parse_model_ref(resolved.ref) == HfRef("org/name", SHA)
    assert (resolved.path / "tokenizer" / "vocab.txt").read_bytes() == FILES["tokenizer/vocab.txt"]


def test_resolve_pinned_commit(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name")
    populate(hub_cache, "org/name", sha=OLD_SHA, files={"config.json": b"{}"}, refs={})
    resolved = offline(tmp_path).resolve_hf(HfRef("org/name", OLD_SHA))
    assert resolved.ref == f"hf://org/name@{OLD_SHA}"
    assert (resolved.path / "config.json").read_bytes() == b"{}"


def test_resolve_tag_and_nested_branch(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name", refs={"main": SHA, "v1.0": SHA, "pr/7": SHA})
    cache = offline(tmp_path)
    assert cache.resolve_hf(HfRef("org/name", "v1.0")).revision == SHA
    assert cache.resolve_hf(HfRef("org/name", "pr/7")).revision == SHA


def test_resolve_repo_without_org(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "gpt2")
    assert offline(tmp_path).resolve_hf(HfRef("gpt2")).ref == f"hf://gpt2@{SHA}"


def test_complete_listing_resolves(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name", listing=list(FILES))
    assert offline(tmp_path).resolve_hf(HfRef("org/name")).revision == SHA


def test_incomplete_snapshot_is_unavailable(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name", listing=[*FILES, "pytorch_model.bin"])
    with pytest.raises(Unavailable, match=r"org/name@main .* is incomplete") as e:
        offline(tmp_path).resolve_hf(HfRef("org/name"))
    assert e.value.field == "model"


def test_uncached_repo_is_unavailable_offline(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name")
    with pytest.raises((Unavailable, NotFound)) as e:
        offline(tmp_path).resolve_hf(HfRef("org/missing"))
    assert "hf://org/missing@main" in e.value.message
    assert "HF_HUB_OFFLINE" in e.value.message
    assert e.value.field == "model"


def test_uncached_revision_is_unavailable_offline(tmp_path: Path, hub_cache: Path) -> None:
    populate(hub_cache, "org/name")
    with pytest.raises(Unavailable, match="hf://org/name@dev is not in the model cache"):
        offline(tmp_path).resolve_hf(HfRef("org/name", "dev"))
    with pytest.raises(Unavailable, match=f"hf://org/name@{OLD_SHA}"):
        offline(tmp_path).resolve_hf(HfRef("org/name", OLD_SHA))


@pytest.mark.parametrize("revision", ["../../../etc", "a/../b", "a//b", "x/."])
def test_revision_escaping_refs_is_invalid(tmp_path: Path, revision: str) -> None:
    with pytest.raises(Invalid) as e:
        offline(tmp_path).resolve_hf(HfRef("org/name", revision))
    assert e.value.field == "model"


def test_tampered_ref_is_refused(tmp_path: Path, hub_cache: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    populate(hub_cache, "org/name", refs={"main": "../../../../outside"})
    with pytest.raises(Unavailable, match="unexpected folder"):
        offline(tmp_path).resolve_hf(HfRef("org/name"))


def test_hf_hub_cache_and_hf_home(tmp_path: Path) -> None:
    populate(tmp_path / "hub-cache", "org/name")
    populate(tmp_path / "home" / "hub", "org/name", sha=OLD_SHA)
    both = offline(
        tmp_path, HF_HUB_CACHE=str(tmp_path / "hub-cache"), HF_HOME=str(tmp_path / "home")
    )
    assert both.hf_cache == tmp_path / "hub-cache"
    assert both.resolve_hf(HfRef("org/name")).revision == SHA
    home = offline(tmp_path, HF_HOME=str(tmp_path / "home"))
    assert home.hf_cache == tmp_path / "home" / "hub"
    assert home.resolve_hf(HfRef("org/name")).revision == OLD_SHA


def test_token_is_never_logged(
    tmp_path: Path, hub_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    populate(hub_cache, "org/name")
    caplog.set_level(logging.DEBUG)
    cache = offline(tmp_path, HF_TOKEN="hf_SECRETsecretSECRET")
    cache.resolve_hf(HfRef("org/name"))
    with pytest.raises(Unavailable) as e:
        cache.resolve_hf(HfRef("org/missing"))
    assert "org/name" in caplog.text
    assert "SECRET" not in caplog.text
    assert "SECRET" not in e.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "https://huggingface.co"),
        ("https://hub.example.org/", "https://hub.example.org"),
        ("http://127.0.0.1:8080/mirror", "http://127.0.0.1:8080/mirror"),
    ],
)
def test_endpoint(tmp_path: Path, value: str | None, expected: str) -> None:
    env = {} if value is None else {"HF_ENDPOINT": value}
    assert NodeCache(tmp_path, env=env).hf_endpoint == expected


@pytest.mark.parametrize(
    "value",
    ["file:///etc", "ftp://hub", "https://user:pw@hub.example.org", "https://h/?x=1", "hub.org"],
)
def test_bad_endpoint_is_refused(tmp_path: Path, value: str) -> None:
    cache = NodeCache(tmp_path, env={"HF_ENDPOINT": value})
    with pytest.raises(Invalid) as e:
        _ = cache.hf_endpoint
    assert e.value.field == "HF_ENDPOINT"
    with pytest.raises(Invalid):  # nothing is fetched from it either
        cache.resolve_hf(HfRef("org/name"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HF_HUB_OFFLINE": "1"}, True),
        ({"HF_HUB_OFFLINE": "true"}, True),
        ({"TRANSFORMERS_OFFLINE": "YES"}, True),
        ({"HF_HUB_OFFLINE": "0"}, False),
        ({}, False),
    ],
)
def test_offline_flag(tmp_path: Path, env: dict[str, str], expected: bool) -> None:
    assert NodeCache(tmp_path, env=env).hf_offline is expected


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert NodeCache(tmp_path).hf_cache == tmp_path / "c"
    assert NodeCache(tmp_path).hf_offline  # set by conftest
