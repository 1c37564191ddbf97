"""`S3Fetch` and `S3Download` against a real S3-compatible server (moto, authentication on).

What is fetched is pinned by its listing digest; a cached copy is hashed again before it is
used; missing prefixes, refused keys, an unreachable store and a store that never answers
fail with a reason that names the reference and no secret.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.artifacts.s3 import (
    Fetched,
    Limits,
    S3Config,
    S3Fetch,
    S3Object,
    listing_digest,
    relative_path,
)
from podium.artifacts.s3 import _check_no_clash as check_no_clash
from podium.artifacts.s3_download import CHILD_FIXED, CHILD_VARS, S3Download
from podium.artifacts.sources import NodeCache, ResolvedSource
from podium.core.errors import Invalid, NotFound, PodiumError, TooLarge, Unavailable
from podium.core.spec import S3Ref
from tests.support.s3_store import S3Store, running_s3
from tests.support.silent_hub import silent_listener

WAIT_S = 90
LIMITS = Limits(max_bytes=10 * 1024 * 1024, max_files=100)
MODEL = {"model.skops": b"weights" * 1000, "config/labels.json": b'["a", "b", "c"]'}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    with running_s3(tmp_path_factory.mktemp("moto")) as s3:
        client = s3.client()
        client.create_bucket(Bucket="models")
        for name, data in MODEL.items():
            client.put_object(Bucket="models", Key=f"iris/v1/{name}", Body=data)
        client.put_object(Bucket="models", Key="iris/v1/", Body=b"")  # a folder marker
        client.put_object(Bucket="models", Key="iris/v10/other", Body=b"not under iris/v1/")
        yield s3


def fetcher(
    store: S3Store,
    tmp_path: Path,
    ref: str = "s3://models/iris/v1",
    keys: tuple[str, str] | None = None,
    limits: Limits = LIMITS,
) -> S3Fetch:
    bucket, _, prefix = ref.removeprefix("s3://").partition("/")
    prefix, _, digest = prefix.partition("@")
    config = S3Config.from_env({"PODIUM_S3_ENDPOINT_URL": store.url})
    return S3Fetch(
        config,
        S3Ref(bucket, prefix.rstrip("/"), digest or None),
        root=tmp_path / "cache" / "s3",
        limits=limits,
        connect_timeout_s=5,
        read_timeout_s=30,
        credentials=keys or (store.access_key_id, store.secret_access_key),
    )


def staging(tmp_path: Path) -> Path:
    folder = tmp_path / "cache" / "downloads" / f"s3-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    return folder


# ---------------------------------------------------------------------- pure parts


def test_the_listing_digest_is_order_free_and_covers_path_size_and_etag() -> None:
    a = S3Object("p/a", "a", 1, "e1")
    b = S3Object("p/b", "b", 2, "e2")
    assert listing_digest([a, b]) == listing_digest([b, a])
    assert listing_digest([a, b]) != listing_digest([a, S3Object("p/b", "b", 2, "e3")])
    assert listing_digest([a, b]) != listing_digest([a, S3Object("p/b", "b", 3, "e2")])
    assert listing_digest([a, b]) != listing_digest([a, S3Object("p/c", "c", 2, "e2")])


@pytest.mark.parametrize(
    ("key", "path"),
    [("iris/v1/model.skops", "model.skops"), ("iris/v1/a/b.json", "a/b.json"), ("iris/v1/", None)],
)
def test_keys_become_paths_under_the_prefix(key: str, path: str | None) -> None:
    assert relative_path(key, "iris/v1") == path


@pytest.mark.parametrize("key", ["p/../x", "p/a//b", "p/./a", "p//etc/passwd", "p/a\\b", "p/a\nb"])
def test_keys_that_would_leave_the_folder_are_refused(key: str) -> None:
    with pytest.raises(Invalid, match="not a safe file path"):
        relative_path(key, "p")


def test_a_key_the_store_lists_outside_the_prefix_is_refused() -> None:
    with pytest.raises(Invalid, match="not under the prefix 'iris/v1'"):
        relative_path("iris/v10/other", "iris/v1")  # a misbehaving store: not iris/v1/…
    with pytest.raises(Invalid, match="not under the prefix"):
        relative_path("elsewhere/model.skops", "iris/v1")


def _objects(*paths: str) -> list[S3Object]:
    return [S3Object(f"p/{path}", path, 1, "e") for path in paths]


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (("a", "a/b"), "'a' is also a folder of 'a/b'"),
        (("Model.bin", "model.bin"), "'Model.bin' and 'model.bin' differ only in case"),
        (("Config/x", "config/y"), "'Config' and 'config' differ only in case"),
        (("caf\u00e9", "cafe\u0301"), "differ only in case or Unicode form"),
        (("x" * 256,), "longer than 255 bytes"),
        (("d/" + "\u00e9" * 128 + "/f",), "longer than 255 bytes"),  # 256 bytes in UTF-8
    ],
)
def test_a_listing_no_file_system_could_hold_is_refused(
    paths: tuple[str, ...], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        check_no_clash(_objects(*paths), "s3://m/p")


def test_paths_that_differ_by_more_than_case_pass() -> None:
    check_no_clash(_objects("a/b", "a/c", "A1", "x" * 255), "s3://m/p")


@pytest.mark.parametrize(
    "url",
    ["ftp://store", "http://user:pw@store", "http://store/path", "http://store?x=1", "store"],
)
def test_a_malformed_endpoint_setting_is_refused_without_its_credentials(url: str) -> None:
    with pytest.raises(Invalid) as caught:
        S3Config.from_env({"PODIUM_S3_ENDPOINT_URL": url})
    assert caught.value.field == "PODIUM_S3_ENDPOINT_URL"
    assert "pw" not in str(caught.value)


def test_without_an_endpoint_setting_requests_go_to_aws_in_the_region() -> None:
    config = S3Config.from_env({"PODIUM_S3_REGION": "eu-west-3"})
    assert config.endpoint_url == "https://s3.eu-west-3.amazonaws.com"
    assert not config.custom


# ---------------------------------------------------------------------- against the store


def test_fetch_downloads_every_object_under_the_prefix_and_pins_them(
    store: S3Store, tmp_path: Path
) -> None:
    totals: list[int] = []
    got = fetcher(store, tmp_path).fetch(staging(tmp_path), totals.append)
    files = sorted(p.relative_to(got.path).as_posix() for p in got.path.rglob("*") if p.is_file())
    assert files == ["config/labels.json", "model.skops"]  # not iris/v10/, not the marker
    assert (got.path / "model.skops").read_bytes() == MODEL["model.skops"]
    assert totals == [sum(len(v) for v in MODEL.values())]
    assert got.bytes_fetched == totals[0] and not got.cached
    assert got.path == tmp_path / "cache" / "s3" / "models" / got.digest

    pinned = fetcher(store, tmp_path, f"s3://models/iris/v1@{got.digest}")
    again = pinned.fetch(staging(tmp_path))
    assert again.cached and again.bytes_fetched == 0 and again.path == got.path


def test_a_cached_copy_that_changed_on_disk_is_fetched_again(
    store: S3Store, tmp_path: Path
) -> None:
    got = fetcher(store, tmp_path).fetch(staging(tmp_path))
    (got.path / "model.skops").write_bytes(b"tampered")
    again = fetcher(store, tmp_path).fetch(staging(tmp_path))
    assert not again.cached and again.bytes_fetched > 0
    assert (again.path / "model.skops").read_bytes() == MODEL["model.skops"]


def test_two_downloads_of_one_listing_never_remove_each_others_folder(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B has moved its folder into place but not yet recorded it when A, a download of the
    same listing (another endpoint's keys, another server process), looks at the cache: A
    must neither take B's folder for a broken copy and remove it nor replace it."""
    real_replace = os.replace
    committed, a_done = threading.Event(), threading.Event()
    inode: list[int] = []

    def replace(src: str | Path, dst: str | Path) -> None:
        real_replace(src, dst)
        if threading.current_thread().name == "fetch-b" and Path(dst).is_dir() and not inode:
            inode.append(Path(dst).stat().st_ino)
            committed.set()
            a_done.wait(5)  # between B's rename and its record: A comes now (or waits)

    monkeypatch.setattr(os, "replace", replace)
    results: dict[str, Fetched | Exception] = {}

    def run() -> None:
        name = threading.current_thread().name
        try:
            results[name] = fetcher(store, tmp_path).fetch(staging(tmp_path))
        except Exception as e:
            results[name] = e
        finally:
            if name == "fetch-a":
                a_done.set()

    b = threading.Thread(target=run, name="fetch-b")
    b.start()
    assert committed.wait(WAIT_S), results
    a = threading.Thread(target=run, name="fetch-a")
    a.start()
    a.join(WAIT_S)
    b.join(WAIT_S)
    got_a, got_b = results["fetch-a"], results["fetch-b"]
    assert isinstance(got_a, Fetched) and isinstance(got_b, Fetched), results
    assert got_a.path == got_b.path and got_a.digest == got_b.digest
    assert got_b.path.stat().st_ino == inode[0]  # B's folder was never removed nor replaced
    assert (got_b.path / "model.skops").read_bytes() == MODEL["model.skops"]
    again = fetcher(store, tmp_path).fetch(staging(tmp_path))  # recorded, and verifies
    assert again.cached and again.path == got_b.path


def test_a_folder_left_without_its_record_is_fetched_anew(store: S3Store, tmp_path: Path) -> None:
    """A commit that died between the rename and the record left a folder: never taken for
    a finished copy."""
    got = fetcher(store, tmp_path).fetch(staging(tmp_path))
    got.path.with_name(got.digest + ".tree").unlink()
    (got.path / "model.skops").write_bytes(b"half")
    again = fetcher(store, tmp_path).fetch(staging(tmp_path))
    assert not again.cached and (again.path / "model.skops").read_bytes() == MODEL["model.skops"]


def test_a_pin_the_prefix_no_longer_holds_is_refused(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no longer holds the objects"):
        fetcher(store, tmp_path, "s3://models/iris/v1@" + "0" * 64).fetch(staging(tmp_path))


def test_a_missing_prefix_or_bucket_is_not_found(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no objects under s3://models/absent"):
        fetcher(store, tmp_path, "s3://models/absent").fetch(staging(tmp_path))
    with pytest.raises(NotFound, match="bucket 'no-such-bucket' not found"):
        fetcher(store, tmp_path, "s3://no-such-bucket/iris").fetch(staging(tmp_path))


@pytest.mark.parametrize("wrong", ["key id", "secret"])
def test_refused_credentials_say_so_and_never_show_the_secret(
    store: S3Store, tmp_path: Path, wrong: str
) -> None:
    secret = "wrong-secret-VALUE-1234" if wrong == "secret" else store.secret_access_key
    key_id = store.access_key_id if wrong == "secret" else "AKIANOTAKEY0000"
    with pytest.raises(Unavailable) as caught:
        fetcher(store, tmp_path, keys=(key_id, secret)).fetch(staging(tmp_path))
    message = str(caught.value)
    assert "refused the credentials for s3://models/iris/v1" in message
    assert secret not in message and store.secret_access_key not in message


def test_the_limits_bound_the_listing(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(TooLarge, match="more than 1 objects"):
        fetcher(store, tmp_path, limits=Limits(max_bytes=10**9, max_files=1)).fetch(
            staging(tmp_path)
        )
    with pytest.raises(TooLarge, match="more than 100 bytes"):
        fetcher(store, tmp_path, limits=Limits(max_bytes=100, max_files=10)).fetch(
            staging(tmp_path)
        )


def test_an_unreachable_store_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = S3Config.from_env({"PODIUM_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    fetch = S3Fetch(
        config,
        S3Ref("models", "iris"),
        root=tmp_path / "s3",
        limits=LIMITS,
        connect_timeout_s=2,
        read_timeout_s=2,
        credentials=("id", "secret-value"),
    )
    with pytest.raises(Unavailable, match=f"cannot reach the S3 store at http://127.0.0.1:{port}"):
        fetch.fetch(staging(tmp_path))


# ---------------------------------------------------------------------- the child process


def download(
    tmp_path: Path, url: str, ref: S3Ref, keys: tuple[str, str], stall_s: float = 60
) -> S3Download:
    cache = NodeCache(tmp_path / "cache", env={"PODIUM_S3_ENDPOINT_URL": url})
    job = S3Download(
        cache,
        ref,
        keys=keys,
        limits=LIMITS,
        stall_s=stall_s,
        connect_timeout_s=5,
        read_timeout_s=600,
    )
    job.start()
    return job


def outcome(job: S3Download) -> ResolvedSource | PodiumError:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            done = job.check()
        except PodiumError as e:
            return e
        if done is not None:
            return done
        time.sleep(0.1)
    job.cancel()
    raise AssertionError(f"the download of {job.label} did not end")


def test_the_download_child_fetches_and_reports_the_pinned_reference(
    store: S3Store, tmp_path: Path
) -> None:
    keys = (store.access_key_id, store.secret_access_key)
    job = download(tmp_path, store.url, S3Ref("models", "iris/v1"), keys)
    argv = job._proc.args if job._proc else []
    assert store.secret_access_key not in str(argv)  # in the child's environment only
    got = outcome(job)
    assert isinstance(got, ResolvedSource)
    assert got.ref == f"s3://models/iris/v1@{got.revision}"
    assert (got.path / "model.skops").read_bytes() == MODEL["model.skops"]
    assert job.bytes_total == sum(len(v) for v in MODEL.values()) == job.bytes_done
    assert not list((tmp_path / "cache" / "downloads").iterdir())  # staging removed


def test_the_download_child_reports_a_refusal_without_the_secret(
    store: S3Store, tmp_path: Path
) -> None:
    job = download(tmp_path, store.url, S3Ref("models", "iris/v1"), (store.access_key_id, "bad-S"))
    error = outcome(job)
    assert isinstance(error, Unavailable) and "refused the credentials" in str(error)
    assert "bad-S" not in str(error)


def test_a_store_that_never_answers_stalls_and_the_child_is_killed(tmp_path: Path) -> None:
    with silent_listener() as url:
        job = download(tmp_path, url, S3Ref("models", "iris"), ("id", "secret"), stall_s=1.5)
        proc = job._proc
        error = outcome(job)
    assert isinstance(error, Unavailable)
    assert "download of s3://models/iris stalled: no data for 1.5 s" in str(error)
    assert proc is not None and proc.poll() is not None


# ---------------------------------------------------------------------- the child's environment

SERVER_ENV = {
    "PODIUM_DATABASE_URL": "postgresql://podium:db-pa55@db/podium",
    "PODIUM_TOKEN": "pod_server_token",
    "HF_TOKEN": "hf_server_token",
    "AWS_ACCESS_KEY_ID": "AKIASERVERKEY0000000",
    "AWS_SECRET_ACCESS_KEY": "server-aws-secret",
    "AWS_SESSION_TOKEN": "server-aws-session",
    "AWS_PROFILE": "server-profile",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://elsewhere.example/creds",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
    "AWS_ROLE_ARN": "arn:aws:iam::1:role/x",
    "AWS_REGION": "eu-west-3",
    "PODIUM_S3_ENDPOINT_URL": "http://store.internal:9000",
    "HTTPS_PROXY": "http://proxy.internal:3128",
}
SERVER_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def child_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keys: tuple[str, str] | None,
    server_credentials: bool = False,
) -> dict[str, str]:
    """The child's environment as production builds it: the node cache configured from the
    server's own `os.environ` (env=None, as `LocalBackend` does)."""
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)
    job = S3Download(
        NodeCache(tmp_path / "cache"),
        S3Ref("models", "iris"),
        keys=keys,
        server_credentials=server_credentials,
        limits=LIMITS,
        stall_s=60,
        connect_timeout_s=5,
        read_timeout_s=30,
    )
    try:
        argv, env = job._command()
    finally:
        job._cleanup()
    assert "server-aws-secret" not in str(argv) and "endpoint-secret" not in str(argv)
    return env


def _no_server_secret(env: dict[str, str]) -> None:
    allowed = CHILD_VARS | set(CHILD_FIXED) | {"PODIUM_S3_ENDPOINT_URL", "PODIUM_S3_REGION"}
    assert set(env) - SERVER_KEYS <= allowed, set(env) - allowed
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ROLE_ARN"):
        assert name not in env
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" not in env and "PODIUM_TOKEN" not in env
    assert "db-pa55" not in str(env) and "hf_server_token" not in str(env)
    # botocore reads no profile (credential_process, SSO, role_arn) and asks no IMDS
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    # the store, the region and the proxy are the operator's, as the parent resolved them
    assert env["PODIUM_S3_ENDPOINT_URL"] == "http://store.internal:9000"
    assert env["PODIUM_S3_REGION"] == "eu-west-3"
    assert env["HTTPS_PROXY"] == "http://proxy.internal:3128"


def test_the_child_gets_the_endpoints_keys_and_nothing_of_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = child_command(tmp_path, monkeypatch, ("AKIAENDPOINT", "endpoint-secret"))
    _no_server_secret(env)
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAENDPOINT"
    assert env["AWS_SECRET_ACCESS_KEY"] == "endpoint-secret"
    assert "AWS_SESSION_TOKEN" not in env  # the server's would pair with the wrong keys


def test_without_keys_the_server_credentials_are_used_only_where_the_operator_opted_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Invalid) as caught:
        child_command(tmp_path, monkeypatch, None)
    assert caught.value.field == "model_source.access_key_secret"
    assert "PODIUM_S3_SERVER_CREDENTIALS is off" in str(caught.value)
    assert not list((tmp_path / "cache" / "downloads").glob("s3-*"))  # nothing started

    env = child_command(tmp_path, monkeypatch, None, server_credentials=True)
    _no_server_secret(env)
    assert {k: env[k] for k in SERVER_KEYS} == {k: SERVER_ENV[k] for k in SERVER_KEYS}


def test_the_child_fetches_with_the_server_credentials_from_its_allow_listed_env(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the real child, its environment built from the allow-list only, with
    the server's own environment keys (opted in)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", store.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", store.secret_access_key)
    monkeypatch.setenv("AWS_PROFILE", "absent-profile")  # would fail the child if it got it
    monkeypatch.setenv("PODIUM_S3_ENDPOINT_URL", store.url)
    job = S3Download(
        NodeCache(tmp_path / "cache"),
        S3Ref("models", "iris/v1"),
        server_credentials=True,
        limits=LIMITS,
        stall_s=60,
        connect_timeout_s=5,
        read_timeout_s=600,
    )
    job.start()
    got = outcome(job)
    assert isinstance(got, ResolvedSource), got
    assert (got.path / "model.skops").read_bytes() == MODEL["model.skops"]
