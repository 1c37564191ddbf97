"""`create_web()`: the dashboard's ASGI app, mounted by `server/app.py` at `/` and `/ui/`.

    GET /             index.html (the single page; its routes live after the `#`), with a
                      `<link rel="modulepreload">` for every module
    GET /ui/{path}    a file under static/
    GET /favicon.ico  the icon

The files (about 400 KB) are read once, when the app is built, and served from memory:
each with a strong ETag (a 304 for `If-None-Match`) and, when the browser accepts it and
the file is worth it, gzip-compressed in advance. Only the files found there can be
answered (a dictionary lookup: no path is ever joined to a folder), everything else is a
404. Measured (a loop over five of the files, CPU time in process, on the 2-core dev
machine): Starlette's StaticFiles behind GZipMiddleware (a stat, a threadpool read and a
compression per request) cost 2.35 ms of the server's CPU per file, from memory 0.007 ms;
the page loads 40 files, and the server that answers them is the one that serves the
API and the gateway. The cost: a changed file is seen after a restart of the server.

Every answer carries the dashboard's Content Security Policy: scripts, styles, images
and requests from this origin only, no inline script, no frames; plus the headers
every answer of Podium carries (`core/problems.SAFE_HEADERS`). `Cache-Control: no-cache`
makes the browser revalidate each file (a 304 when unchanged), so an upgraded Podium is
never shown with yesterday's scripts.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from podium.core.asgi import ASGIApp, Receive, Scope, Send
from podium.core.problems import SAFE_HEADERS

STATIC = Path(__file__).parent / "static"
ASSETS = "/ui"  # the prefix of every file the page loads
PRELOADS = "<!-- modulepreload -->"  # index.html's marker for the module links

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_HEADERS = [(k, v) for k, v in SAFE_HEADERS if k != b"content-security-policy"] + [
    (b"content-security-policy", CSP.encode()),
    (b"cache-control", b"no-cache"),
]
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
}
_COMPRESSIBLE = frozenset({".js", ".css", ".html", ".svg", ".md"})
_MIN_GZIP = 1024  # smaller files gain less than the header costs


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    content_type: bytes
    etag: bytes

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        kind = _TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0]
        packed = None
        if suffix in _COMPRESSIBLE and len(body) >= _MIN_GZIP:
            packed = gzip.compress(body, compresslevel=9, mtime=0)
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'.encode()
        return cls(body, packed, (kind or "application/octet-stream").encode(), etag)


def is_web_path(path: str) -> bool:
    """Whether the server hands this path to the dashboard."""
    return path == "/" or path.startswith(f"{ASSETS}/") or path == "/favicon.ico"


# Where a visit starts: the shell, and the page most visits open on. Every module these
# import (statically) is preloaded; the other pages load when first shown (js/main.js).
START_MODULES = ("js/main.js", "js/pages/endpoints.js")
_STATIC_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s[^;()]*?from\s*["'](\.{1,2}/[^"']+)["']"""
)


def start_modules(static: Path = STATIC) -> list[Path]:
    """START_MODULES and every module they import statically, transitively."""
    seen: dict[Path, None] = {}
    todo = [static / name for name in START_MODULES]
    while todo:
        module = todo.pop().resolve()
        if module in seen or not module.is_file():
            continue
        seen[module] = None
        text = module.read_text(encoding="utf-8")
        todo.extend(module.parent / target for target in _STATIC_IMPORT.findall(text))
    return sorted(seen)


def index_page(static: Path = STATIC) -> bytes:
    """index.html with a `<link rel="modulepreload">` for each start-up module, so the
    browser fetches them at once instead of discovering them import by import."""
    page = (static / "index.html").read_text(encoding="utf-8")
    root = static.resolve()
    links = "\n    ".join(
        f'<link rel="modulepreload" href="{ASSETS}/{path.relative_to(root).as_posix()}" />'
        for path in start_modules(static)
    )
    return page.replace(PRELOADS, links).encode()


def load_assets(static: Path = STATIC) -> dict[str, Asset]:
    """Every file under `static` by the path it is served at, plus `/` and the icon."""
    assets = {
        f"{ASSETS}/{path.relative_to(static).as_posix()}": Asset.of(path.read_bytes(), path.suffix)
        for path in sorted(static.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
    assets["/"] = Asset.of(index_page(static), ".html")
    assets["/favicon.ico"] = assets[f"{ASSETS}/favicon.svg"]
    return assets


class WebApp:
    """Pure ASGI: a file from memory, or 404/405; the dashboard's headers on each."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        asset = self.assets.get(scope["path"])
        method = scope["method"]
        if asset is None:
            await _answer(send, 404, b"Not Found", b"text/plain; charset=utf-8")
        elif method not in ("GET", "HEAD"):
            await _answer(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8")
        else:
            headers = dict(scope["headers"])
            if headers.get(b"if-none-match") == asset.etag:
                await _answer(send, 304, b"", None, etag=asset.etag)
                return
            body, extra = asset.body, []
            if asset.gzipped is not None:
                extra.append((b"vary", b"accept-encoding"))
                if b"gzip" in headers.get(b"accept-encoding", b""):
                    body = asset.gzipped
                    extra.append((b"content-encoding", b"gzip"))
            await _answer(
                send,
                200,
                body,
                asset.content_type,
                etag=asset.etag,
                extra=extra,
                head=method == "HEAD",
            )


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None,
    *,
    etag: bytes | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    headers = [*_HEADERS, *(extra or ())]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if etag is not None:
        headers.append((b"etag", etag))
    if status != 304:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def create_web(static: Path = STATIC) -> ASGIApp:
    """The dashboard app, its files read now (nothing is read at import)."""
    return WebApp(load_assets(static))
