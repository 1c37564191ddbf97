"""Text generation over `POST /`, as Text Generation Inference (TGI) answers it.

Request: {"inputs": "prompt", "parameters": {max_new_tokens, temperature, top_p, do_sample,
stop (or stop_sequences), seed, details, return_full_text}, "stream": bool}. `inputs` may
also be a list of prompts (not when streaming). Parameters Podium cannot honour (top_k,
repetition_penalty, grammar, …) are refused with a 400 rather than ignored; unknown keys
are ignored.

Sampling follows TGI: greedy unless `do_sample` is true or `temperature` / `top_p` is set.

Answer: `[{"generated_text": "…", "details"?: {…}}]`, one element per prompt. Stream:
server-sent events `data: {"index", "token": {"id", "text", "logprob", "special"},
"generated_text": null | "…", "details": null | {…}}`; the last event carries the whole
text. Runtimes report text pieces, not token ids or log-probabilities: `token.id` is -1
and `logprob` null. A failure after the stream began is `data: {"error", "error_type"}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podium.core.errors import Invalid
from podium.protocols.hf.codec import HfRequest
from podium.protocols.params import bounded, stop_sequences

UNSUPPORTED = (
    "top_k",
    "typical_p",
    "repetition_penalty",
    "frequency_penalty",
    "truncate",
    "watermark",
    "grammar",
    "adapter_id",
    "top_n_tokens",
)
# TGI's finish reasons for the runtime's "stop" / "length".
FINISH = {"stop": "eos_token", "length": "length"}


@dataclass(frozen=True, slots=True)
class GenerateParams:
    max_new_tokens: int | None = None
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    details: bool = False
    return_full_text: bool = False


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    prompts: list[str]
    params: GenerateParams
    stream: bool = False


def decode_generate(request: HfRequest) -> GenerateRequest:
    """The generation a `POST /` asks for; Invalid naming the field at fault."""
    inputs = request.inputs
    if isinstance(inputs, str):
        prompts = [inputs]
    elif isinstance(inputs, list) and inputs and all(isinstance(p, str) for p in inputs):
        if request.stream and len(inputs) > 1:
            raise Invalid("streaming takes one prompt; send inputs as a string", field="inputs")
        prompts = list(inputs)
    else:
        raise Invalid('"inputs" must be the prompt: a string', field="inputs")
    return GenerateRequest(prompts, decode_params(request.parameters), request.stream)


def decode_params(p: dict[str, Any]) -> GenerateParams:
    refused = [k for k in UNSUPPORTED if p.get(k) not in (None, False)]
    if p.get("best_of") not in (None, 1):
        refused.append("best_of")
    if p.get("decoder_input_details"):
        refused.append("decoder_input_details")
    if refused:
        names = ", ".join(refused)
        raise Invalid(
            f"parameters not supported by this endpoint: {names}; it takes max_new_tokens, "
            "temperature, top_p, do_sample, stop, seed, details and return_full_text",
            field=f"parameters.{refused[0]}",
        )
    max_new = p.get("max_new_tokens")
    if max_new is not None and (not _is_int(max_new) or max_new < 1):
        raise Invalid(
            f"max_new_tokens must be a positive integer; got {max_new!r}",
            field="parameters.max_new_tokens",
        )
    do_sample = _flag(p, "do_sample")
    temperature = _number(p, "temperature", 0.0, 100.0)
    top_p = _number(p, "top_p", 0.0, 1.0)
    if top_p == 0.0:
        raise Invalid("top_p must be greater than 0", field="parameters.top_p")
    sampling = do_sample or temperature is not None or (top_p is not None and top_p < 1.0)
    if temperature is None:
        temperature = 1.0 if sampling else 0.0
    seed = p.get("seed")
    if seed is not None and not _is_int(seed):
        raise Invalid(f"seed must be an integer; got {seed!r}", field="parameters.seed")
    return GenerateParams(
        max_new_tokens=max_new,
        temperature=temperature,
        top_p=1.0 if top_p is None else top_p,
        stop=_stop(p),
        seed=seed,
        details=_flag(p, "details"),
        return_full_text=_flag(p, "return_full_text"),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag(p: dict[str, Any], name: str) -> bool:
    value = p.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false", field=f"parameters.{name}")
    return value


def _number(p: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = p.get(name)
    return None if value is None else bounded(value, f"parameters.{name}", low, high)


# ---------------------------------------------------------------------- answers


def _token(text: str, special: bool = False) -> dict[str, Any]:
    return {"id": -1, "text": text, "logprob": None, "special": special}


def generated(
    prompt: str,
    pieces: list[str],
    finish_reason: str | None,
    params: GenerateParams,
    *,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """One element of the non-streamed answer."""
    text = "".join(pieces)
    doc: dict[str, Any] = {"generated_text": prompt + text if params.return_full_text else text}
    if params.details:
        doc["details"] = {
            "finish_reason": FINISH.get(finish_reason or "stop", finish_reason),
            "generated_tokens": completion_tokens,
            "seed": params.seed,
            "prefill": [],
            "tokens": [_token(t) for t in pieces],
            "input_length": prompt_tokens,
        }
    return doc


def error_event(message: str, error_type: str = "generation") -> dict[str, Any]:
    """What a stream sends when generation fails after it began."""
    return {"error": message, "error_type": error_type}


class GenerateStream:
    """The server-sent events of one streamed generation."""

    def __init__(self, prompt: str, params: GenerateParams) -> None:
        self._prefix = prompt if params.return_full_text else ""
        self._params = params
        self._text: list[str] = []
        self._index = 0

    def piece(
        self, text: str, finish_reason: str | None, prompt_tokens: int, completion_tokens: int
    ) -> list[dict[str, Any]]:
        if finish_reason is None and not text:
            return []
        self._index += 1
        self._text.append(text)
        final = finish_reason is not None
        details = None
        if final and self._params.details:
            details = {
                "finish_reason": FINISH.get(finish_reason or "stop", finish_reason),
                "generated_tokens": completion_tokens,
                "seed": self._params.seed,
                "input_length": prompt_tokens,
            }
        return [
            {
                "index": self._index,
                "token": _token(text, special=final and not text),
                "top_tokens": None,
                "generated_text": self._prefix + "".join(self._text) if final else None,
                "details": details,
            }
        ]


def _stop(p: dict[str, Any]) -> tuple[str, ...]:
    if p.get("stop") is None and p.get("stop_sequences") is not None:  # the older name
        return stop_sequences(p["stop_sequences"], "parameters.stop_sequences")
    return stop_sequences(p.get("stop"), "parameters.stop")
