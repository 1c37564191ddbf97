"""Where the transformers runtime puts a model: the device and dtype chosen from what the
replica sees (its GPUs) and the endpoint's `engine_args`. The choice is pure and tested
here on any machine; real loads run on the CPU here, and on CUDA where a GPU exists
(skipped, with the reason, where none does)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import Invalid, LoadError
from podium.runtimes.base import GenerationRequest, RuntimeConfig
from podium.runtimes.transformers import TransformersRuntime
from podium.runtimes.transformers.placement import (
    Chosen,
    Placement,
    choose,
    native_bf16,
    parse,
    resolve,
)

torch = pytest.importorskip("torch")
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU on this machine (torch sees none)"
)


def _load(path: Path, **options: str) -> TransformersRuntime:
    runtime = TransformersRuntime(RuntimeConfig(model_name="test", options=options))
    runtime.load(path)
    return runtime


def _param(runtime: TransformersRuntime) -> Any:
    handler: Any = runtime.handler
    model = getattr(handler, "model", None) or handler.pipe.model
    return next(model.parameters())


# ---------------------------------------------------------------------- the choice (pure)


def test_parse_reads_device_and_dtype_and_defaults_to_auto() -> None:
    assert parse({}) == Placement("auto", "auto")
    assert parse({"device": "CUDA:1", "dtype": "bfloat16"}) == Placement("cuda:1", "bfloat16")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"device": "tpu"}, "engine_args.device"),
        ({"device": "cuda:x"}, "engine_args.device"),
        ({"dtype": "int8"}, "engine_args.dtype"),
        ({"max_model_len": 4096}, "engine_args.max_model_len"),
    ],
)
def test_parse_refuses_what_it_does_not_know_naming_the_field(
    args: dict[str, object], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        parse(args)
    assert caught.value.field == field


def test_auto_is_the_gpu_in_half_precision_when_there_is_one_else_the_cpu() -> None:
    auto = Placement()
    assert choose(auto, cuda_devices=0, bf16=False) == Chosen("cpu", "float32")
    assert choose(auto, cuda_devices=1, bf16=True) == Chosen("cuda", "bfloat16")
    assert choose(auto, cuda_devices=2, bf16=False) == Chosen("cuda", "float16")


def test_the_spec_overrides_device_and_dtype() -> None:
    assert choose(Placement("cpu"), cuda_devices=1, bf16=True) == Chosen("cpu", "float32")
    assert choose(Placement("cuda:1", "float32"), cuda_devices=2, bf16=True) == Chosen(
        "cuda:1", "float32"
    )
    assert choose(Placement(dtype="bfloat16"), cuda_devices=0, bf16=False) == Chosen(
        "cpu", "bfloat16"
    )


def test_a_gpu_asked_for_that_the_replica_lacks_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="this replica has no such GPU \\(it sees none\\)"):
        choose(Placement("cuda"), cuda_devices=0, bf16=False)
    with pytest.raises(LoadError, match="it sees 1"):
        choose(Placement("cuda:1"), cuda_devices=1, bf16=False)


def test_bfloat16_only_where_the_gpu_does_it_in_hardware() -> None:
    """Ampere (8.x) and later compute bfloat16; a T4 (7.5) or V100 (7.0) only emulates it,
    several times slower than float16."""
    assert [native_bf16(c) for c in [(6, 1), (7, 0), (7, 5)]] == [False, False, False]
    assert [native_bf16(c) for c in [(8, 0), (8, 6), (9, 0), (10, 0)]] == [True] * 4


def _gpus(monkeypatch: pytest.MonkeyPatch, *capabilities: tuple[int, int]) -> None:
    """torch sees these GPUs (the seam `resolve` reads; this machine may have none). Its
    `is_bf16_supported` says True whatever the GPU, as the real one does by default
    (`including_emulation=True`)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: capabilities[i])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


def test_auto_on_a_pre_ampere_gpu_is_float16_not_emulated_bfloat16(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gpus(monkeypatch, (7, 5))  # a T4
    assert resolve({}) == Chosen("cuda", "float16")
    _gpus(monkeypatch, (8, 0))  # an A100
    assert resolve({}) == Chosen("cuda", "bfloat16")
    _gpus(monkeypatch, (8, 6), (7, 0))  # the GPU asked for decides
    assert resolve({"device": "cuda:1"}) == Chosen("cuda:1", "float16")
    assert resolve({"device": "cuda:0"}) == Chosen("cuda:0", "bfloat16")


# ---------------------------------------------------------------------- real loads


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU choice: a GPU is here")
def test_without_a_gpu_the_model_runs_on_the_cpu_in_float32(gpt2_path: Path) -> None:
    runtime = _load(gpt2_path)
    assert runtime.placement == Chosen("cpu", "float32")
    param = _param(runtime)
    assert (str(param.device), param.dtype) == ("cpu", torch.float32)
    chunks = list(runtime.generate(GenerationRequest("Hello", max_tokens=3, temperature=0), _ev()))
    assert chunks


def test_dtype_from_the_spec_on_the_cpu(classifier_path: Path) -> None:
    runtime = _load(classifier_path, device="cpu", dtype="bfloat16")
    assert runtime.placement == Chosen("cpu", "bfloat16")
    assert _param(runtime).dtype == torch.bfloat16
    assert runtime.predict("a fine day", {})


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: cuda would load")
def test_cuda_asked_without_a_gpu_fails_the_load(classifier_path: Path) -> None:
    with pytest.raises(LoadError, match=r"engine_args\.device is cuda"):
        _load(classifier_path, device="cuda")


def test_a_bad_option_fails_the_load_naming_it(classifier_path: Path) -> None:
    with pytest.raises(LoadError, match=r"engine_args\.dtype"):
        _load(classifier_path, dtype="int4")


@needs_cuda
def test_on_a_gpu_auto_runs_the_model_on_cuda_in_half_precision(gpt2_path: Path) -> None:
    runtime = _load(gpt2_path)
    assert runtime.placement is not None and runtime.placement.device == "cuda"
    param = _param(runtime)
    assert param.device.type == "cuda"
    assert param.dtype in (torch.bfloat16, torch.float16)
    chunks = list(runtime.generate(GenerationRequest("Hello", max_tokens=5, temperature=0), _ev()))
    assert chunks


@needs_cuda
def test_on_a_gpu_encoders_and_embeddings_run_on_cuda(
    classifier_path: Path, encoder_path: Path
) -> None:
    classifier = _load(classifier_path)
    assert _param(classifier).device.type == "cuda"
    assert classifier.predict("a fine day", {})
    encoder = _load(encoder_path)
    assert encoder.placement is not None and encoder.placement.device == "cuda"
    assert len(encoder.embed(["one", "two"]).vectors) == 2


def _ev() -> threading.Event:
    return threading.Event()
