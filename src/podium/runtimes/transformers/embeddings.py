"""feature-extraction: one sentence embedding per text (also OpenAI /v1/embeddings).

A sentence-transformers folder (modules.json) is loaded with the library itself, so its
pooling and normalisation are the model's own. Any other text model is mean-pooled over
its encoder's last hidden states (attention-masked).

`predict`: "text" or ["text", …] → [[float, …], …], one vector per text, always 2-D (as
Text Embeddings Inference answers). Parameters: `normalize` (true: unit vectors; the
default keeps the model's own output, which for most sentence-transformers models is
already normalised), `truncate` (default true: texts longer than the model's limit are
cut; false: such a text is refused), `prompt_name` (sentence-transformers prompts).
`embed` (OpenAI): unit vectors always, and the number of tokens the texts used.
"""

from __future__ import annotations

from typing import Any

from podium.core.errors import Invalid
from podium.runtimes.base import Capabilities, Embeddings
from podium.runtimes.transformers import loading
from podium.runtimes.transformers.handler import TaskHandler
from podium.runtimes.transformers.params import get_bool, invalid, split, texts_of
from podium.runtimes.transformers.placement import Chosen, torch_dtype
from podium.runtimes.transformers.tasks import FEATURE_EXTRACTION, ModelInfo


class EmbeddingTask(TaskHandler):
    capabilities = Capabilities(batch=True, embeddings=True)

    def __init__(self, model: Any, tokenizer: Any, *, sentence_transformers: bool) -> None:
        super().__init__(FEATURE_EXTRACTION)
        self.model = model
        self.tokenizer = tokenizer
        self.sentence_transformers = sentence_transformers
        if sentence_transformers:
            self.max_tokens: int | None = int(model.max_seq_length)
        else:
            self.max_tokens = loading.max_tokens_of(model, tokenizer)

    @classmethod
    def load(
        cls, info: ModelInfo, *, safetensors: bool, where: Chosen = loading.CPU
    ) -> EmbeddingTask:
        if info.sentence_transformers:
            from sentence_transformers import SentenceTransformer

            with loading.load_errors("sentence-transformers model"):
                model = SentenceTransformer(
                    str(info.folder),
                    device=where.device,
                    local_files_only=True,
                    trust_remote_code=False,
                )
                model.to(torch_dtype(where))
            model.eval()
            return cls(model, model.tokenizer, sentence_transformers=True)
        model = loading.load_model(
            FEATURE_EXTRACTION, info.folder, safetensors=safetensors, where=where
        )
        tokenizer = loading.load_tokenizer(info.folder)
        return cls(model, tokenizer, sentence_transformers=False)

    # ------------------------------------------------------------------ requests

    def predict(self, inputs: Any, parameters: dict[str, Any]) -> Any:
        return self.predict_batch([inputs], parameters)[0]

    def predict_batch(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        normalize = get_bool(parameters, "normalize", None)
        truncate = get_bool(parameters, "truncate", True)
        prompt_name = self._prompt_name(parameters)
        flat: list[str] = []
        sizes: list[int] = []
        for item in inputs:
            texts, _ = texts_of(item)
            flat.extend(texts)
            sizes.append(len(texts))
        if not truncate:
            self._check_lengths(flat)
        vectors, _ = self.encode(flat, normalize=normalize, prompt_name=prompt_name)
        return split(vectors, sizes, [False] * len(sizes))

    def embed(self, texts: list[str]) -> Embeddings:
        if not texts or not all(isinstance(t, str) for t in texts):
            raise Invalid("input must be a string or a non-empty list of strings", field="input")
        vectors, tokens = self.encode(texts, normalize=True, prompt_name=None)
        return Embeddings(vectors=vectors, prompt_tokens=tokens)

    # ------------------------------------------------------------------ model

    def encode(
        self, texts: list[str], *, normalize: bool | None, prompt_name: str | None
    ) -> tuple[list[list[float]], int]:
        """One forward pass over `texts`: vectors and the number of tokens used."""
        import torch

        with self.lock, torch.inference_mode():
            if self.sentence_transformers:
                array = self.model.encode(
                    texts,
                    batch_size=max(1, len(texts)),
                    convert_to_numpy=True,
                    normalize_embeddings=bool(normalize),
                    show_progress_bar=False,
                    prompt_name=prompt_name,
                )
                return array.tolist(), self.count_tokens(texts)
            batch = self.tokenizer(
                texts,
                padding=True,
                truncation=self.max_tokens is not None,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.model.device)
            hidden = self.model(**batch).last_hidden_state.float()  # pooled in float32
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled.tolist(), int(batch["attention_mask"].sum())

    def count_tokens(self, texts: list[str]) -> int:
        encoded = self.tokenizer(
            texts, truncation=self.max_tokens is not None, max_length=self.max_tokens
        )
        return sum(len(ids) for ids in encoded["input_ids"])

    def _check_lengths(self, texts: list[str]) -> None:
        if self.max_tokens is None:
            return
        for ids in self.tokenizer(texts)["input_ids"]:
            if len(ids) > self.max_tokens:
                raise invalid(
                    f"an input has {len(ids)} tokens; this model takes at most "
                    f"{self.max_tokens} (send truncate: true to cut it)",
                    "inputs",
                )

    def _prompt_name(self, parameters: dict[str, Any]) -> str | None:
        name = parameters.get("prompt_name")
        if name is None:
            return None
        prompts = getattr(self.model, "prompts", None) if self.sentence_transformers else None
        if not isinstance(name, str) or not prompts or name not in prompts:
            known = ", ".join(sorted(prompts)) if prompts else "none"
            raise invalid(
                f"unknown prompt_name {name!r}; this model's prompts: {known}",
                "parameters.prompt_name",
            )
        return name

    def context_length(self) -> int | None:
        return self.max_tokens

    def close(self) -> None:
        self.model = None
