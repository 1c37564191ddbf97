"""Open Inference Protocol v2 routes, for tensor runtimes; {m} is the endpoint name.

    GET  /v2  /v2/health/live  /v2/health/ready
    GET  /v2/models/{m}[/versions/{v}]          metadata
    GET  /v2/models/{m}[/versions/{v}]/ready
    GET  /v2/models/{m}[/versions/{v}]/config   Triton's model configuration (tritonclient)
    POST /v2/models/{m}[/versions/{v}]/infer

Infer takes JSON tensors or the binary tensor data extension (`Inference-Header-Content-
Length`), gzip- or deflate-encoded bodies too, and answers binary outputs when asked (as
`tritonclient` does by default). Errors are {"error": "…"}.

The model's version is the version of the model the endpoint serves ("3" of `iris:3`), as
`versions` in the metadata and `model_version` in answers; the endpoint's revision (which
changes with the spec, not the model) is the `X-Podium-Revision` header of both.
"""

from __future__ import annotations

import gzip
import zlib

from podium import __version__
from podium.core.errors import Invalid, NotFound
from podium.protocols import oip_v2
from podium.replica.context import Serving
from podium.replica.http import JSON, Receive, Scope, Send, dumps, read_body

PREFIX = "/v2"
MODELS = "/v2/models/"
OCTETS = b"application/octet-stream"
REVISION_HEADER = b"x-podium-revision"


class V2Routes:
    def __init__(self, serving: Serving) -> None:
        self.s = serving
        self.metadata = (
            serving.runtime.v2_metadata() if serving.runtime.capabilities.tensor else None
        )
        self.revision = [(REVISION_HEADER, str(serving.info.revision).encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = self.s.http
        if self.metadata is None:
            reason = (
                f"the {self.s.info.runtime} runtime does not serve the Open Inference Protocol v2"
            )
            await http.v2_error(send, NotFound(reason))
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
            if method not in ("GET", "HEAD"):
                await self._not_allowed(send, "GET")
            elif path == "/v2":
                extensions = [oip_v2.BINARY_EXTENSION, "model_configuration"]
                await http.json(send, 200, oip_v2.server_metadata(__version__, extensions))
            elif path == "/v2/health/live":
                await http.json(send, 200, {"live": True})
            else:
                ready = self._healthy()
                await http.json(send, 200 if ready else 503, {"ready": ready})
            return
        if not path.startswith(MODELS):
            await http.v2_error(send, NotFound(f"no route {path}"))
            return
        name, *rest = path[len(MODELS) :].split("/")
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]  # any version: a replica serves exactly one model version
        if name != self.s.info.endpoint:
            await http.v2_error(send, NotFound(f"model {name!r} not found"))
            return
        action = "/".join(rest)
        want = {"": "GET", "ready": "GET", "config": "GET", "infer": "POST"}.get(action)
        if want is None:
            await http.v2_error(send, NotFound(f"no route {path}"))
        elif method != want and not (want == "GET" and method == "HEAD"):
            await self._not_allowed(send, want)
        elif action == "infer":
            await self.s.handle(
                "v2", send, lambda: self._infer(scope, receive, send), http.v2_error
            )
        elif action == "ready":
            ready = self._healthy()
            await http.json(send, 200 if ready else 503, {"name": name, "ready": ready})
        elif action == "config":
            await http.json(send, 200, oip_v2.model_config(self.metadata))
        else:
            meta = oip_v2.model_metadata(self.metadata, self.s.info.model_version)
            await http.send(send, 200, dumps(meta), JSON, self.revision)

    def _healthy(self) -> bool:
        try:
            return self.s.runtime.health()
        except Exception:
            return False

    async def _not_allowed(self, send: Send, want: str) -> None:
        body = dumps(oip_v2.error(f"use {want}"))
        await self.s.http.send(send, 405, body, headers=[(b"allow", want.encode())])

    async def _infer(self, scope: Scope, receive: Receive, send: Send) -> int:
        headers = dict(scope["headers"])
        raw_length = headers.get(oip_v2.BINARY_HEADER.encode())
        header_length = raw_length.decode("latin-1") if raw_length is not None else None
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").lower()
        body = await read_body(receive)
        async with self.s.slot(receive):
            payload, json_length = await self.s.call(self._work, body, header_length, encoding)
        if json_length is None:
            await self.s.http.send(send, 200, payload, JSON, self.revision)
        else:
            extra = [(oip_v2.BINARY_HEADER.encode(), str(json_length).encode()), *self.revision]
            await self.s.http.send(send, 200, payload, OCTETS, extra)
        return 200

    def _work(
        self, body: bytes, header_length: str | None, encoding: str
    ) -> tuple[bytes, int | None]:
        body = _decompress(body, encoding)
        request = oip_v2.decode_infer_request(body, self.metadata, header_length)
        wanted = frozenset(request.outputs) if request.outputs is not None else None
        outputs = self.s.runtime.infer(request.inputs, request.parameters, wanted)
        return oip_v2.encode_infer_body(
            outputs,
            model_name=self.s.info.endpoint,
            model_version=self.s.info.model_version,
            request=request,
        )


def _decompress(body: bytes, encoding: str) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError) as e:
        raise Invalid(f"the body is not valid {encoding} data: {e}", field="body") from None
    if encoding not in ("identity", ""):
        raise Invalid(
            f"unsupported Content-Encoding {encoding!r}; use gzip or deflate", field="body"
        )
    return body
