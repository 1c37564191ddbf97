"""Build OpenAI response documents: completions, chat completions, their stream chunks,
embeddings, the model list and the error body. Plain dicts; no I/O.

Streams are server-sent events: `data: {json}\\n\\n` per chunk, ending with
`data: [DONE]\\n\\n`. A stream encoder turns runtime output (text pieces, a finish reason,
token counts) into the chunk documents, and keeps what the last chunk needs (usage).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

DONE = b"data: [DONE]\n\n"

# HTTP status -> OpenAI error type.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def new_id(prefix: str) -> str:
    """`chatcmpl-…` / `cmpl-…`: unique enough for a response id."""
    return f"{prefix}-{secrets.token_hex(12)}"


def sse(doc: Any) -> bytes:
    """One server-sent event carrying a JSON document."""
    return b"data: " + json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def error_status(status: int) -> int:
    """The status an OpenAI-shaped answer carries for an error of `status`: OpenAI answers
    input it cannot use with 400 where Podium's rule says 422; every other code is kept."""
    return 400 if status == 422 else status


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error document: {"error": {"message", "type", "param", "code"}}."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


# ---------------------------------------------------------------------- whole responses


@dataclass(frozen=True, slots=True)
class Choice:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


def chat_completion(
    choice: Choice, *, id: str, model: str, created: int, fingerprint: str
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": choice.text},
                "logprobs": None,
                "finish_reason": choice.finish_reason or "stop",
            }
        ],
        "usage": usage(choice.prompt_tokens, choice.completion_tokens),
    }


def completion(
    choices: list[Choice], *, id: str, model: str, created: int, fingerprint: str
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": i,
                "text": c.text,
                "logprobs": None,
                "finish_reason": c.finish_reason or "stop",
            }
            for i, c in enumerate(choices)
        ],
        "usage": usage(
            sum(c.prompt_tokens for c in choices), sum(c.completion_tokens for c in choices)
        ),
    }


def embeddings(
    vectors: list[list[float]], *, model: str, prompt_tokens: int, encoding_format: str = "float"
) -> dict[str, Any]:
    """`encoding_format` "base64": each vector as little-endian float32 bytes, base64."""
    data = []
    for i, vector in enumerate(vectors):
        value: Any
        if encoding_format == "base64":
            raw = np.asarray(vector, dtype="<f4").tobytes()
            value = base64.b64encode(raw).decode("ascii")
        else:
            value = [float(x) for x in vector]
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def model_list(model: str, *, created: int, owned_by: str = "podium") -> dict[str, Any]:
    """`GET /v1/models`: the endpoint is the one model."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": owned_by}],
    }


# ---------------------------------------------------------------------- streams


class ChatStream:
    """Chunks of one streamed chat completion (`chat.completion.chunk` objects)."""

    def __init__(
        self, *, id: str, model: str, created: int, fingerprint: str, include_usage: bool
    ) -> None:
        self._base = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": fingerprint,
        }
        self._include_usage = include_usage
        self._usage = usage(0, 0)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            **self._base,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            doc["usage"] = None
        return doc

    def begin(self) -> list[dict[str, Any]]:
        """The first chunk: the assistant's role, no content yet."""
        return [self._chunk({"role": "assistant", "content": ""}, None)]

    def piece(
        self, text: str, finish_reason: str | None, prompt_tokens: int, completion_tokens: int
    ) -> list[dict[str, Any]]:
        self._usage = usage(prompt_tokens, completion_tokens)
        if finish_reason is None:
            return [self._chunk({"content": text}, None)] if text else []
        out = [self._chunk({"content": text}, None)] if text else []
        out.append(self._chunk({}, finish_reason))
        return out

    def end(self) -> list[dict[str, Any]]:
        """After the last piece: the usage chunk (choices empty) when asked for."""
        if not self._include_usage:
            return []
        return [{**self._base, "choices": [], "usage": self._usage}]


class CompletionStream:
    """Chunks of one streamed completion (`text_completion` objects); prompts in turn."""

    def __init__(
        self, *, id: str, model: str, created: int, fingerprint: str, include_usage: bool
    ) -> None:
        self._base = {
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "system_fingerprint": fingerprint,
        }
        self._include_usage = include_usage
        self._done: list[tuple[int, int]] = []  # usage of finished prompts
        self._current = (0, 0)

    def piece(
        self,
        index: int,
        text: str,
        finish_reason: str | None,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> list[dict[str, Any]]:
        self._current = (prompt_tokens, completion_tokens)
        if finish_reason is not None:
            self._done.append(self._current)
            self._current = (0, 0)
        elif not text:
            return []
        doc: dict[str, Any] = {
            **self._base,
            "choices": [
                {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self._include_usage:
            doc["usage"] = None
        return [doc]

    def end(self) -> list[dict[str, Any]]:
        if not self._include_usage:
            return []
        counts = [*self._done, self._current]
        total = usage(sum(p for p, _ in counts), sum(c for _, c in counts))
        return [{**self._base, "choices": [], "usage": total}]
