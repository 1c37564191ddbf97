"""text-generation: causal language models, streamed token by token.

`generate` runs `model.generate` in a background thread with a `TokenStream` (the
streamer) and a `HaltCriteria` (the stopping criterion), and yields `GenerationChunk`s as
text arrives. One generation runs at a time per replica (the handler's lock): the
request's seed seeds torch's global generator, which only that generation then uses.

- temperature 0 → greedy; otherwise sampling with `temperature` and `top_p`.
- `max_tokens` None → `DEFAULT_MAX_TOKENS`. The prompt and the completion must fit in the
  context (`context_length()`): a prompt that leaves no room raises
  `Invalid("prompt has N tokens; this model's context is M tokens", field="prompt")`;
  a `max_tokens` beyond the room left is *clamped* to it (the answer then ends with
  finish_reason "length"), rather than refused.
- finish_reason: "length" when the completion reached its token budget, else "stop"
  (end-of-sequence token, a stop string, or the request was cancelled).
- Stop strings are not part of the text; tokens are counted with the model's tokenizer.

Hugging Face style: `predict("prompt", parameters)` → [{"generated_text": …}] with
`max_new_tokens`, `temperature`, `top_p`, `do_sample` (default false: greedy; setting
`temperature` or `top_p` alone turns sampling on, as TGI does), `seed`, `stop` (or
`stop_sequences`), `return_full_text` (default true). `predict_stream` yields the text
deltas.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podium.core.errors import Invalid
from podium.runtimes.base import Capabilities, GenerationChunk, GenerationRequest
from podium.runtimes.transformers import loading
from podium.runtimes.transformers.handler import TaskHandler
from podium.runtimes.transformers.params import get_bool, get_float, get_int, invalid
from podium.runtimes.transformers.placement import Chosen
from podium.runtimes.transformers.streaming import HaltCriteria, TokenStream
from podium.runtimes.transformers.tasks import TEXT_GENERATION

DEFAULT_MAX_TOKENS = 256


class GenerationTask(TaskHandler):
    def __init__(self, model: Any, tokenizer: Any) -> None:
        super().__init__(TEXT_GENERATION)
        self.model = model
        self.tokenizer = tokenizer
        self.context = loading.max_tokens_of(model, tokenizer)
        self.capabilities = Capabilities(
            generative=True, streaming=True, chat=bool(getattr(tokenizer, "chat_template", None))
        )
        eos = model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, list) else [eos]
        if tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        self.eos_ids = frozenset(int(i) for i in eos_ids if i is not None)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else next(iter(sorted(self.eos_ids)), None)

    @classmethod
    def load(
        cls, folder: Path, *, safetensors: bool, where: Chosen = loading.CPU
    ) -> GenerationTask:
        model = loading.load_model(TEXT_GENERATION, folder, safetensors=safetensors, where=where)
        return cls(model, loading.load_tokenizer(folder))

    def context_length(self) -> int | None:
        return self.context

    # ------------------------------------------------------------------ chat

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        if not self.capabilities.chat:
            raise Invalid(
                "this model has no chat template, so it cannot render messages; "
                "use /v1/completions with a prompt instead",
                field="messages",
            )
        if not isinstance(messages, list) or not messages:
            raise Invalid("messages must be a non-empty list", field="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise Invalid(f"messages[{i}] must be an object with a role", field="messages")
        try:
            prompt = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as e:  # jinja2 errors: the template refused these messages
            raise Invalid(f"the chat template refused the messages: {e}", field="messages") from e
        return str(prompt)

    # ------------------------------------------------------------------ generation

    def generate(
        self, request: GenerationRequest, cancelled: threading.Event
    ) -> Iterator[GenerationChunk]:
        prompt_ids = self._prompt_ids(request.prompt)
        budget = self._budget(len(prompt_ids), request.max_tokens)
        return self._run(prompt_ids, budget, request, cancelled)

    def _prompt_ids(self, prompt: str) -> list[int]:
        if not isinstance(prompt, str):
            raise Invalid("prompt must be a string", field="prompt")
        bos = self.tokenizer.bos_token
        # A rendered chat template already starts with BOS; do not add a second one.
        special = not (bos and prompt.startswith(str(bos)))
        ids = list(self.tokenizer(prompt, add_special_tokens=special)["input_ids"])
        if not ids:
            if self.tokenizer.bos_token_id is None:
                raise Invalid("prompt is empty", field="prompt")
            ids = [int(self.tokenizer.bos_token_id)]
        return ids

    def _budget(self, prompt_tokens: int, max_tokens: int | None) -> int:
        if max_tokens is not None and max_tokens < 1:
            raise Invalid("max_tokens must be at least 1", field="max_tokens")
        wanted = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
        if self.context is None:
            return wanted
        if prompt_tokens >= self.context:
            raise Invalid(
                f"prompt has {prompt_tokens} tokens; this model's context is {self.context} tokens",
                field="prompt",
            )
        return min(wanted, self.context - prompt_tokens)

    def _run(
        self,
        prompt_ids: list[int],
        budget: int,
        request: GenerationRequest,
        cancelled: threading.Event,
    ) -> Iterator[GenerationChunk]:
        n_prompt = len(prompt_ids)
        while not self.lock.acquire(timeout=0.05):
            if cancelled.is_set():
                yield GenerationChunk("", n_prompt, 0, finish_reason="stop")
                return
        try:
            halt = threading.Event()
            stream = TokenStream(self.tokenizer, request.stop, halt, self.eos_ids)
            thread = threading.Thread(
                target=self._produce,
                args=(stream, prompt_ids, budget, request, HaltCriteria(cancelled, halt)),
                name="podium-generate",
                daemon=True,
            )
            thread.start()
            try:
                while (piece := stream.next()) is not None and not cancelled.is_set():
                    yield GenerationChunk(piece.text, n_prompt, piece.tokens)
            finally:
                stream.drain(thread)
            if stream.error is not None:
                raise stream.error
            if stream.tokens >= budget and not stream.stopped and not stream.ended_on_eos:
                finish = "length"
            else:
                finish = "stop"
            yield GenerationChunk("", n_prompt, stream.tokens, finish_reason=finish)
        finally:
            self.lock.release()

    def _produce(
        self,
        stream: TokenStream,
        prompt_ids: list[int],
        budget: int,
        request: GenerationRequest,
        criteria: HaltCriteria,
    ) -> None:
        import torch
        from transformers import StoppingCriteriaList

        error: BaseException | None = None
        try:
            with torch.inference_mode():
                if request.seed is not None:
                    torch.manual_seed(request.seed)
                input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.model.device)
                self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    generation_config=self._config(request, budget),
                    streamer=stream,
                    stopping_criteria=StoppingCriteriaList([criteria]),
                )
        except BaseException as e:  # handed to the consumer, raised there
            error = e
        finally:
            stream.finish(error)

    def _config(self, request: GenerationRequest, budget: int) -> Any:
        config = copy.deepcopy(self.model.generation_config)
        config.max_new_tokens = budget
        config.max_length = None
        config.min_new_tokens = None
        config.min_length = 0
        config.num_beams = 1
        config.pad_token_id = self.pad_id
        if request.temperature > 0:
            config.do_sample = True
            config.temperature = request.temperature
            config.top_p = request.top_p
            config.top_k = None
        else:
            config.do_sample = False
            config.temperature = None
            config.top_p = None
            config.top_k = None
        return config

    # ------------------------------------------------------------------ HF style

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        request = self._hf_request(inputs, parameters)
        text = "".join(chunk.text for chunk in self.generate(request, threading.Event()))
        full = get_bool(parameters, "return_full_text", True)
        return [{"generated_text": request.prompt + text if full else text}]

    def predict_stream(self, inputs: Any, parameters: dict[str, Any]) -> Iterator[Any]:
        request = self._hf_request(inputs, parameters)
        for chunk in self.generate(request, threading.Event()):
            if chunk.text:
                yield chunk.text

    def _hf_request(self, inputs: Any, parameters: dict[str, Any]) -> GenerationRequest:
        if not isinstance(inputs, str):
            raise invalid("inputs must be a string (the prompt)", "inputs")
        temperature = get_float(parameters, "temperature", None)
        top_p = get_float(parameters, "top_p", None, maximum=1.0)
        sampling = get_bool(parameters, "do_sample", None)
        if sampling is None:
            sampling = temperature is not None or top_p is not None
        stop = parameters.get("stop", parameters.get("stop_sequences"))
        if isinstance(stop, str):
            stop = [stop]
        if stop is None:
            stop = []
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid("stop must be a string or a list of strings", "parameters.stop")
        seed = get_int(parameters, "seed", None, minimum=0)
        return GenerationRequest(
            prompt=inputs,
            max_tokens=get_int(parameters, "max_new_tokens", None),
            temperature=(temperature if temperature is not None else 1.0) if sampling else 0.0,
            top_p=top_p if top_p is not None else 1.0,
            stop=tuple(stop),
            seed=seed,
        )

    def close(self) -> None:
        self.model = None
