"""A tiny OCI image for the container tests, built locally (no registry is reachable here):
a root filesystem of Debian's static busybox (`busybox-static`, installed by `make test`)
imported with `podman import`, about 2 MB, built in well under a second.

The image's server is busybox `httpd` on `$PORT` (default 8080):

    GET  /health              "ok"
    GET  /version             the image's tag (a rolling update can tell old from new)
    POST /cgi-bin/echo        the request body back, as application/json
    GET  /cgi-bin/model       the file names under $MODEL_DIR (default /repository)
    GET  /cgi-bin/env?NAME    the value of environment variable NAME
    GET  /cgi-bin/hog?MB      holds MB megabytes in a shell variable (the OOM test)

It prints `listening on $PORT` when it starts (the logs test reads it).

    image = build_test_image("2")   # "localhost/podium-test/busybox:2", built once per tag
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
REPOSITORY = "localhost/podium-test/busybox"
CONTENT_LABEL = "podium.test-image"
APPLETS = ("sh", "cat", "httpd", "echo", "env", "ls", "head", "tr", "sleep", "wc", "kill", "printf")
# PID 1 of a container ignores SIGTERM unless it handles it: the shell stays PID 1, runs
# httpd and ends it on TERM (a graceful stop, as a well-made image does).
_SERVE = (
    'echo "listening on ${PORT:-8080}"; '
    "/bin/httpd -f -v -p ${PORT:-8080} -h /www & pid=$!; "
    'trap "kill $pid; exit 0" TERM INT; wait $pid'
)
# CGI headers end in CRLF: busybox httpd passes them on as written, and the gateway's HTTP
# parser (httptools) refuses a bare LF after a header value.
_HEAD = "#!/bin/sh\nprintf 'Content-Type: %s\\r\\n\\r\\n'\n"
_CGI = {
    "echo": _HEAD % "application/json" + "cat\n",
    "model": _HEAD % "text/plain" + "ls ${MODEL_DIR:-/repository}\n",
    "env": _HEAD % "text/plain" + 'eval echo "\\$$QUERY_STRING"\n',
    "hog": _HEAD % "text/plain"
    + 'x=$(head -c $(( ${QUERY_STRING:-100} * 1048576 )) /dev/zero | tr "\\0" a)\n'
    + "echo ${#x}\n",
}


def engine_program() -> str:
    """podman, which the tests drive (docker has no daemon on this machine)."""
    program = shutil.which("podman")
    if program is None:
        raise RuntimeError("podman is missing: `make test` installs podman, runc, busybox-static")
    return program


def build_test_image(tag: str = "1", program: str | None = None) -> str:
    """`localhost/podium-test/busybox:TAG`, imported unless the node has it already."""
    podman = program or engine_program()
    image = f"{REPOSITORY}:{tag}"
    present = subprocess.run(
        [podman, "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if present.returncode == 0 and _content_id() in present.stdout:
        return image  # built from this very content (an older build of the tag is replaced)
    if not BUSYBOX.exists():
        raise RuntimeError(f"{BUSYBOX} is missing: `make test` installs busybox-static")
    change = f'CMD ["/bin/sh", "-c", {_json(_SERVE)}]'
    label = f"LABEL {CONTENT_LABEL}={_content_id()}"
    subprocess.run(
        [podman, "import", "--change", change, "--change", label, "-", image],
        input=_rootfs(tag),
        capture_output=True,
        timeout=120,
        check=True,
    )
    return image


def remove_image(image: str, program: str | None = None) -> None:
    subprocess.run(
        [program or engine_program(), "rmi", "-f", image],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _rootfs(tag: str) -> bytes:
    out = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in ("bin", "www", "www/cgi-bin", "tmp", "repository"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            if folder == "tmp":
                info.mode = 0o1777
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "busybox", now
            tar.addfile(link)
        files = {"www/health": "ok\n", "www/version": f"{tag}\n"}
        files.update({f"www/cgi-bin/{name}": body for name, body in _CGI.items()})
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), now
            info.mode = 0o755 if "cgi-bin" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _content_id() -> str:
    """A hash of what the image holds (busybox, scripts, command): a tag built from other
    content is built again."""
    digest = hashlib.sha256(BUSYBOX.read_bytes() if BUSYBOX.exists() else b"")
    digest.update(_json([_SERVE, _CGI, APPLETS]).encode())
    return digest.hexdigest()[:16]


def _json(text: object) -> str:
    import json

    return json.dumps(text)
