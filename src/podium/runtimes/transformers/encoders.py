"""Text encoder tasks through transformers pipelines, in the Hugging Face API's shapes.

    text-classification       "text" → [[{"label", "score"}, …]]  (all labels, best first;
                              `top_k`, `function_to_apply`); a list of texts → one inner
                              list per text. Long texts are truncated to the model's limit.
    token-classification      "text" → [{"entity_group", "score", "word", "start", "end"}]
                              (`aggregation_strategy`, default "simple"; `ignore_labels`);
                              a list → one list per text
    fill-mask                 "text with one [MASK]" → [{"score", "token", "token_str",
                              "sequence"}] (`top_k` default 5, `targets`); a list → one list
                              per text
    zero-shot-classification  "text" → {"sequence", "labels", "scores"} (`candidate_labels`
                              required, `multi_label`, `hypothesis_template`); a list → one
                              dict per text

`predict_batch` flattens every request's texts into one pipeline call with
`batch_size` = all of them: one padded forward pass (for zero-shot, one pass over every
text x label pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium.core.errors import LoadError
from podium.runtimes.base import Capabilities
from podium.runtimes.transformers import loading
from podium.runtimes.transformers.handler import TaskHandler
from podium.runtimes.transformers.params import (
    get_bool,
    get_choice,
    get_int,
    get_strings,
    invalid,
    plain,
    split,
    texts_of,
)
from podium.runtimes.transformers.placement import Chosen
from podium.runtimes.transformers.tasks import (
    FILL_MASK,
    TEXT_CLASSIFICATION,
    TOKEN_CLASSIFICATION,
    ZERO_SHOT,
)

AGGREGATIONS = ("none", "simple", "first", "average", "max")
FUNCTIONS = ("sigmoid", "softmax", "none")


class TextPipelineTask(TaskHandler):
    """text-classification, token-classification, fill-mask, zero-shot-classification."""

    capabilities = Capabilities(batch=True)

    def __init__(self, task: str, pipe: Any) -> None:
        super().__init__(task)
        self.pipe = pipe
        self.tokenizer = pipe.tokenizer
        self.max_tokens = loading.max_tokens_of(pipe.model, pipe.tokenizer)

    @classmethod
    def load(
        cls, task: str, folder: Path, *, safetensors: bool, where: Chosen = loading.CPU
    ) -> TextPipelineTask:
        model = loading.load_model(task, folder, safetensors=safetensors, where=where)
        tokenizer = loading.load_tokenizer(folder)
        if task == FILL_MASK and tokenizer.mask_token is None:
            raise LoadError("the tokenizer has no mask token, so it cannot serve fill-mask")
        return cls(task, loading.build_pipeline(task, model, tokenizer=tokenizer))

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.predict_batch([inputs], parameters)[0]

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        import torch

        kwargs = self._kwargs(parameters)
        flat: list[str] = []
        sizes: list[int] = []
        singles: list[bool] = []
        for item in inputs:
            texts, single = texts_of(item)
            self._check(texts)
            flat.extend(texts)
            sizes.append(len(texts))
            singles.append(single)
        batch = len(flat) * len(kwargs.get("candidate_labels", [None]))
        with self.lock, torch.inference_mode():
            results = self.pipe(flat, batch_size=batch, **kwargs)
        if len(flat) == 1 and self.task == FILL_MASK:
            results = [results]  # the fill-mask pipeline unwraps a list of one
        out = split(plain(list(results)), sizes, singles)
        if self.task == TEXT_CLASSIFICATION:
            # The Hugging Face API nests one list of labels per text, even for one text.
            out = [
                [answer] if single else answer for answer, single in zip(out, singles, strict=True)
            ]
        return out

    # ------------------------------------------------------------------ parameters

    def _kwargs(self, parameters: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.task == TEXT_CLASSIFICATION:
            kwargs["top_k"] = get_int(parameters, "top_k", None)
            kwargs["truncation"] = True
            function = get_choice(parameters, "function_to_apply", None, FUNCTIONS)
            if function is not None:
                kwargs["function_to_apply"] = function
        elif self.task == TOKEN_CLASSIFICATION:
            kwargs["aggregation_strategy"] = get_choice(
                parameters, "aggregation_strategy", "simple", AGGREGATIONS
            )
            ignore = get_strings(parameters, "ignore_labels")
            if ignore is not None:
                kwargs["ignore_labels"] = ignore
        elif self.task == FILL_MASK:
            top_k = get_int(parameters, "top_k", 5) or 5
            targets = get_strings(parameters, "targets")
            if targets is not None:
                kwargs["targets"] = targets
            kwargs["top_k"] = min(top_k, len(targets) if targets else len(self.tokenizer))
        elif self.task == ZERO_SHOT:
            labels = get_strings(parameters, "candidate_labels")
            if labels is None:
                raise invalid(
                    "zero-shot-classification needs parameters.candidate_labels: "
                    'the labels to choose from, e.g. ["sports", "politics"]',
                    "parameters.candidate_labels",
                )
            kwargs["candidate_labels"] = labels
            kwargs["multi_label"] = get_bool(parameters, "multi_label", False)
            template = parameters.get("hypothesis_template")
            if template is not None:
                if not isinstance(template, str) or "{}" not in template:
                    raise invalid(
                        'hypothesis_template must be a string with "{}" where the label goes',
                        "parameters.hypothesis_template",
                    )
                kwargs["hypothesis_template"] = template
        return kwargs

    def _check(self, texts: list[str]) -> None:
        if self.task == ZERO_SHOT and not all(text.strip() for text in texts):
            raise invalid("inputs must not be empty", "inputs")
        if self.task == FILL_MASK:
            mask = str(self.tokenizer.mask_token)
            for text in texts:
                if text.count(mask) != 1:
                    raise invalid(f"each input must contain the mask token {mask} once", "inputs")
        if self.task in (FILL_MASK, TOKEN_CLASSIFICATION) and self.max_tokens is not None:
            for text in texts:
                n = len(self.tokenizer(text)["input_ids"])
                if n > self.max_tokens:
                    raise invalid(
                        f"input has {n} tokens; this model takes at most {self.max_tokens}",
                        "inputs",
                    )

    def close(self) -> None:
        self.pipe = None
