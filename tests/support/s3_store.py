"""A real S3-compatible server for tests: `moto_server` in its own process on 127.0.0.1.

Authentication is on (moto checks access keys and signatures against its IAM once
`INITIAL_NO_AUTH_ACTION_COUNT` requests have gone by): the first requests create a user,
its policy (everything allowed) and an access key; every later request must be signed
with that key, so wrong keys are refused as AWS would refuse them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

_SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key: unauthenticated
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Store:
    url: str
    access_key_id: str
    secret_access_key: str

    def client(self, key_id: str | None = None, secret: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key_id or self.access_key_id,
            aws_secret_access_key=secret or self.secret_access_key,
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2},
                s3={"addressing_style": "path"},
            ),
        )

    def upload_folder(self, bucket: str, prefix: str, folder: Path) -> None:
        """Every file under `folder` as `prefix/RELATIVE PATH` in `bucket` (created)."""
        s3 = self.client()
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def server_env(self) -> dict[str, str]:
        """What a Podium server needs to fetch from this store with its own credentials."""
        return {
            "PODIUM_S3_ENDPOINT_URL": self.url,
            "PODIUM_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@contextmanager
def running_s3(log_dir: Path) -> Iterator[S3Store]:
    """A moto S3 server on a free loopback port with authentication on; killed after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "moto.log", "wb") as log:
        moto = Path(sys.executable).with_name("moto_server")
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_up(url, proc)
        yield _with_user(url)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.wait(10)


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {proc.returncode}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=2)  # not an AWS action: not counted
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout} s")


def _with_user(url: str) -> S3Store:
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="podium")
    iam.put_user_policy(
        UserName="podium",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="podium")["AccessKey"]
    return S3Store(url, key["AccessKeyId"], key["SecretAccessKey"])


@contextmanager
def slow_proxy(target_url: str, bytes_per_s: int) -> Iterator[str]:
    """A TCP proxy on a free loopback port that forwards to `target_url` and hands the
    answers back at about `bytes_per_s` (requests go through at once): a store on a slow
    link, so a download is seen while it runs. Yields the proxy's URL."""
    import socket
    import threading

    target = target_url.removeprefix("http://").split(":")
    target_addr = (target[0], int(target[1]))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    chunk = max(1, bytes_per_s // 20)

    def pipe(src: socket.socket, dst: socket.socket, pace: bool) -> None:
        try:
            while not stop.is_set():
                data = src.recv(chunk)
                if not data:
                    break
                dst.sendall(data)
                if pace:
                    time.sleep(len(data) / bytes_per_s)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(target_addr, timeout=10)
            upstream.settimeout(None)
            for a, b, pace in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=pipe, args=(a, b, pace), daemon=True).start()

    thread = threading.Thread(target=serve, name="slow-s3-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
