"""Decode and validate OpenAI request bodies: chat completions, completions, embeddings.

Every problem raises `Invalid` whose `field` is the OpenAI parameter at fault (`messages`,
`max_tokens`, `stop`, …); the replica renders it as OpenAI's error body with that `param`.
Parameters Podium cannot honour (n > 1, logprobs, tools, penalties, …) are refused with a
400 rather than silently ignored. The `model` field is accepted whatever it says: the URL
already chose the endpoint (as with TGI and Hugging Face Inference Endpoints).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from podium.core.errors import Invalid
from podium.core.jsondepth import check_depth
from podium.protocols.params import bounded, stop_sequences

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to generate: what the runtime's `GenerationRequest` is built from."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[dict[str, Any]]  # each {"role", "content": str, "name"?}
    sampling: Sampling
    model: str | None = None
    stream: bool = False
    include_usage: bool = False


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    prompts: list[str]
    sampling: Sampling
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    echo: bool = False


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    texts: list[str]
    encoding_format: str = "float"  # or "base64"
    model: str | None = None


# ---------------------------------------------------------------------- public decoders


def decode_chat_request(body: bytes) -> ChatRequest:
    doc = _object(body)
    raw = doc.get("messages")
    if not isinstance(raw, list) or not raw:
        raise Invalid("'messages' must be a non-empty list of messages", field="messages")
    messages = [_message(m, i) for i, m in enumerate(raw)]
    _refuse_unsupported(doc, chat=True)
    stream, include_usage = _stream(doc)
    max_tokens = _max_tokens(doc, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _max_tokens(doc, "max_tokens")
    return ChatRequest(
        messages=messages,
        sampling=_sampling(doc, max_tokens),
        model=_model(doc),
        stream=stream,
        include_usage=include_usage,
    )


def decode_completion_request(body: bytes) -> CompletionRequest:
    doc = _object(body)
    prompt = doc.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    elif (
        isinstance(prompt, list)
        and prompt
        and all(_is_int(p) or isinstance(p, list) for p in prompt)
    ):
        raise Invalid("token id prompts are not supported; send the prompt as text", field="prompt")
    else:
        raise Invalid("'prompt' must be a string or a non-empty list of strings", field="prompt")
    _refuse_unsupported(doc, chat=False)
    suffix = doc.get("suffix")
    if suffix not in (None, ""):
        raise Invalid("'suffix' is not supported", field="suffix")
    best_of = doc.get("best_of")
    if best_of not in (None, 1):
        raise Invalid("'best_of' must be 1", field="best_of")
    echo = doc.get("echo", False)
    if echo is not None and not isinstance(echo, bool):
        raise Invalid("'echo' must be a boolean", field="echo")
    stream, include_usage = _stream(doc)
    return CompletionRequest(
        prompts=prompts,
        sampling=_sampling(doc, _max_tokens(doc, "max_tokens")),
        model=_model(doc),
        stream=stream,
        include_usage=include_usage,
        echo=bool(echo),
    )


def decode_embedding_request(body: bytes) -> EmbeddingRequest:
    doc = _object(body)
    raw = doc.get("input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = list(raw)
    elif isinstance(raw, list) and raw and all(_is_int(t) or isinstance(t, list) for t in raw):
        raise Invalid("token id inputs are not supported; send the input as text", field="input")
    else:
        raise Invalid("'input' must be a string or a non-empty list of strings", field="input")
    if any(not t for t in texts):
        raise Invalid("'input' must not contain empty strings", field="input")
    fmt = doc.get("encoding_format")
    if fmt is None:
        fmt = "float"
    if fmt not in ("float", "base64"):
        raise Invalid("'encoding_format' must be 'float' or 'base64'", field="encoding_format")
    if doc.get("dimensions") is not None:
        raise Invalid("'dimensions' is not supported by this model", field="dimensions")
    return EmbeddingRequest(texts=texts, encoding_format=fmt, model=_model(doc))


# ---------------------------------------------------------------------- helpers


def _object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise Invalid("the request body is empty; send a JSON object", field=None)
    check_depth(body, field=None)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid(f"the request body is not valid JSON: {e}", field=None) from None
    if not isinstance(doc, dict):
        raise Invalid("the request body must be a JSON object", field=None)
    return doc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _model(doc: dict[str, Any]) -> str | None:
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise Invalid("'model' must be a string", field="model")
    return model


def _message(raw: Any, i: int) -> dict[str, Any]:
    where = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise Invalid(f"{where} must be an object with 'role' and 'content'", field=where)
    role = raw.get("role")
    if role not in ROLES:
        raise Invalid(
            f"{where}.role must be one of {', '.join(sorted(ROLES))}; got {role!r}",
            field=f"{where}.role",
        )
    content = raw.get("content")
    if content is None:
        if raw.get("tool_calls") or raw.get("function_call"):
            raise Invalid("tool calls are not supported", field=f"{where}.tool_calls")
        content = ""
    elif isinstance(content, list):
        content = _text_parts(content, f"{where}.content")
    elif not isinstance(content, str):
        raise Invalid(f"{where}.content must be a string or a list of text parts", field=where)
    message: dict[str, Any] = {"role": role, "content": content}
    name = raw.get("name")
    if isinstance(name, str):
        message["name"] = name
    return message


def _text_parts(parts: list[Any], where: str) -> str:
    texts: list[str] = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise Invalid(
                f"{where}[{j}]: only text content parts are supported, not {kind!r}",
                field=f"{where}[{j}]",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise Invalid(f"{where}[{j}].text must be a string", field=f"{where}[{j}].text")
        texts.append(text)
    return "".join(texts)


def _max_tokens(doc: dict[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise Invalid(f"'{name}' must be a positive integer; got {value!r}", field=name)
    return int(value)


def _sampling(doc: dict[str, Any], max_tokens: int | None) -> Sampling:
    temperature = _number(doc, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(doc, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:
        raise Invalid("'top_p' must be greater than 0", field="top_p")
    seed = doc.get("seed")
    if seed is not None and not _is_int(seed):
        raise Invalid(f"'seed' must be an integer; got {seed!r}", field="seed")
    return Sampling(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=stop_sequences(doc.get("stop"), "stop"),
        seed=seed,
    )


def _number(doc: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = doc.get(name)
    return default if value is None else bounded(value, name, low, high)


def _stream(doc: dict[str, Any]) -> tuple[bool, bool]:
    stream = doc.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise Invalid("'stream' must be a boolean", field="stream")
    options = doc.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise Invalid("'stream_options' must be an object", field="stream_options")
    if not stream:
        raise Invalid(
            "'stream_options' is only allowed when 'stream' is true", field="stream_options"
        )
    include = options.get("include_usage", False)
    if include is not None and not isinstance(include, bool):
        raise Invalid(
            "'stream_options.include_usage' must be a boolean", field="stream_options.include_usage"
        )
    return stream, bool(include)


def _refuse_unsupported(doc: dict[str, Any], *, chat: bool) -> None:
    n = doc.get("n")
    if n is not None and n != 1:
        raise Invalid(f"only n=1 is supported; got n={n!r}", field="n")
    for name in ("presence_penalty", "frequency_penalty"):
        value = doc.get(name)
        if value not in (None, 0, 0.0):
            raise Invalid(f"'{name}' is not supported; leave it out or set 0", field=name)
    logprobs = doc.get("logprobs")
    if logprobs not in (None, False) and not (not chat and logprobs == 0):
        raise Invalid("'logprobs' is not supported", field="logprobs")
    if doc.get("top_logprobs") not in (None, 0):
        raise Invalid("'top_logprobs' is not supported", field="top_logprobs")
    if doc.get("logit_bias") not in (None, {}):
        raise Invalid("'logit_bias' is not supported", field="logit_bias")
    if not chat:
        return
    if doc.get("tools") not in (None, []):
        raise Invalid("'tools' (function calling) is not supported", field="tools")
    if doc.get("tool_choice") not in (None, "none", "auto"):
        raise Invalid("'tool_choice' is not supported", field="tool_choice")
    if doc.get("functions") not in (None, []):
        raise Invalid("'functions' (function calling) is not supported", field="functions")
    fmt = doc.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise Invalid("only response_format {'type': 'text'} is supported", field="response_format")
