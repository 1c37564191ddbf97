"""The `transformers` runtime: Hugging Face models (and sentence-transformers folders).

    runtime      TransformersRuntime: find the folder, pick the task, delegate
    tasks        which task a folder serves (pure: reads JSON files only)
    loading      local-only, safetensors-first loading of models, tokenizers, processors
    handler      TaskHandler: the per-task interface the runtime delegates to
    encoders     text-classification, token-classification, fill-mask, zero-shot
    images       image-classification and base64 image decoding
    embeddings   feature-extraction and OpenAI embeddings
    generation   text-generation: streaming, stop strings, chat templates
    streaming    tokens → text deltas between model.generate and the consumer
    placement    device and dtype: the replica's GPU when it has one, from engine_args
    params       request value checks

Importing this package imports neither torch nor transformers (they come with `load`).
"""

from podium.runtimes.transformers.runtime import TransformersRuntime

__all__ = ["TransformersRuntime"]
