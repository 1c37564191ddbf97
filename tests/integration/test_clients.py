"""The official client libraries against a real `podium up`, through the gateway.

    openai.OpenAI(base_url=".../endpoints/NAME/v1")            tiny GPT-2, MiniLM
    huggingface_hub.InferenceClient(model=".../endpoints/NAME")  tiny GPT-2, MiniLM, tiny BERT
    tritonclient.http.InferenceServerClient("127.0.0.1:PORT/endpoints/NAME")
                                                            python tensors, sklearn iris

The transformers models are real folders (tests/support/tiny_models.py) served from an
offline Hugging Face cache (`hf://` references), so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest
import tritonclient.http as triton
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from tritonclient.utils import InferenceServerException

from tests.support.hf_cache import add_to_hf_cache
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, TritonBearer, running_server, wait_running
from tests.support.tiny_models import build_tiny_bert_classifier, build_tiny_gpt2, minilm_path
from tests.unit.replica.bundles import write_tensor_bundle

ENDPOINTS = [
    {"name": "gpt", "model": "hf://tiny/gpt2", "framework": "transformers",
     "task": "text-generation"},
    {"name": "minilm", "model": "hf://sentence-transformers/all-MiniLM-L6-v2",
     "framework": "transformers", "task": "feature-extraction"},
    {"name": "bert", "model": "hf://tiny/bert-classifier", "framework": "transformers",
     "task": "text-classification"},
    {"name": "tensors", "model": "tensors", "framework": "python"},
    {"name": "iris", "model": "iris", "framework": "sklearn"},
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    hub = tmp / "hf-home" / "hub"
    add_to_hf_cache(hub, "tiny/gpt2", build_tiny_gpt2(tmp / "gpt2"))
    add_to_hf_cache(hub, "tiny/bert-classifier", build_tiny_bert_classifier(tmp / "bert"))
    add_to_hf_cache(hub, "sentence-transformers/all-MiniLM-L6-v2", minilm_path())
    home = tmp_path_factory.mktemp("podium")
    with running_server(home, HF_HOME=str(hub.parent)) as s, s.client() as c:
        c.push_model(write_tensor_bundle(tmp / "tensors"), "tensors")
        c.push_model(train_iris_skops(tmp / "iris"), "iris", framework="sklearn")
        for spec in ENDPOINTS:
            c.deploy(spec)
        for spec in ENDPOINTS:
            wait_running(c, str(spec["name"]), timeout=180)
        yield s


def oai(server: ServerProcess, name: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/endpoints/{name}/v1", api_key=server.token, max_retries=0
    )


def hf(server: ServerProcess, name: str) -> InferenceClient:
    return InferenceClient(model=f"{server.url}/endpoints/{name}", token=server.token)


def tc(server: ServerProcess, name: str) -> triton.InferenceServerClient:
    # tritonclient takes "host:port/base-path": the gateway's endpoint prefix is the base path.
    client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}/endpoints/{name}")
    client.register_plugin(TritonBearer(server.token))
    return client


# ---------------------------------------------------------------------- openai


def test_openai_chat_and_completions(server: ServerProcess) -> None:
    client = oai(server, "gpt")
    messages = [{"role": "user", "content": "hello there"}]
    chat = client.chat.completions.create(model="gpt", messages=messages, max_tokens=5)  # type: ignore[arg-type]
    assert chat.model == "gpt"
    assert chat.choices[0].finish_reason in ("length", "stop")
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 5
    assert isinstance(chat.choices[0].message.content, str)

    chunks = list(
        client.chat.completions.create(
            model="gpt",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    greedy = client.chat.completions.create(
        model="gpt",
        messages=messages,
        max_tokens=5,
        temperature=0,  # type: ignore[arg-type]
    )
    assert streamed == greedy.choices[0].message.content  # greedy: the same text either way
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == greedy.usage.completion_tokens  # type: ignore[union-attr]

    completion = client.completions.create(
        model="gpt", prompt=["The quick brown", "Paris is"], max_tokens=4, temperature=0
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.usage is not None and completion.usage.completion_tokens <= 8
    assert [m.id for m in client.models.list()] == ["gpt"]

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt", prompt="the " * 400, max_tokens=4)
    assert caught.value.param == "prompt"
    assert "context" in caught.value.message


def test_openai_embeddings(server: ServerProcess) -> None:
    client = oai(server, "minilm")
    out = client.embeddings.create(model="minilm", input=["a happy dog", "a sad cat"])
    floats = client.embeddings.create(model="minilm", input="a happy dog", encoding_format="float")
    assert [d.index for d in out.data] == [0, 1]
    assert len(out.data[0].embedding) == 384
    assert out.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert np.linalg.norm(out.data[0].embedding) == pytest.approx(1.0, abs=1e-3)
    assert out.usage.prompt_tokens > 0
    assert [m.id for m in client.models.list()] == ["minilm"]


# ---------------------------------------------------------------------- huggingface_hub


def test_huggingface_hub_text_generation_and_chat(server: ServerProcess) -> None:
    client = hf(server, "gpt")
    text = client.text_generation("The quick brown", max_new_tokens=6)
    tokens = list(client.text_generation("The quick brown", max_new_tokens=6, stream=True))
    assert isinstance(text, str) and text
    assert "".join(tokens) == text  # greedy by default, streamed or not
    detailed = client.text_generation("The quick brown", max_new_tokens=3, details=True)
    assert detailed.details is not None and detailed.details.generated_tokens <= 3
    chat = client.chat_completion([{"role": "user", "content": "hi"}], max_tokens=4)
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage.completion_tokens <= 4


def test_huggingface_hub_feature_extraction(server: ServerProcess) -> None:
    vectors = hf(server, "minilm").feature_extraction(["a happy dog", "a sad cat"])
    assert vectors.shape == (2, 384)
    one = hf(server, "minilm").feature_extraction("a happy dog")
    assert one.reshape(-1) == pytest.approx(vectors[0], abs=1e-5)


def test_huggingface_hub_text_classification(server: ServerProcess) -> None:
    labels = hf(server, "bert").text_classification("I love this product")
    assert {x.label for x in labels} == {"positive", "negative"}
    assert sum(x.score for x in labels) == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------- tritonclient


def test_tritonclient_through_the_gateway(server: ServerProcess) -> None:
    with tc(server, "tensors") as client:
        assert client.is_server_live()
        assert client.is_model_ready("tensors")
        meta = client.get_model_metadata("tensors")
        assert meta["name"] == "tensors"
        assert [i["name"] for i in meta["inputs"]] == ["x"]
        for datatype, arr in [
            ("INT32", np.array([[1, -2, 3]], dtype=np.int32)),
            ("FP16", np.array([[0.5, 1.5]], dtype=np.float16)),
            ("UINT8", np.array([[7, 100]], dtype=np.uint8)),
            ("BOOL", np.array([[True, False]])),
            ("BYTES", np.array([[b"ab", b"cd"]], dtype=object)),
        ]:
            for binary in (True, False):
                x = triton.InferInput("x", list(arr.shape), datatype)
                x.set_data_from_numpy(arr, binary_data=binary)
                y = client.infer("tensors", [x]).as_numpy("y")
                assert y is not None and y.shape == arr.shape, (datatype, binary)
                if datatype == "BYTES":
                    assert y.ravel().tolist() == [b"AB", b"CD"]
                elif datatype == "BOOL":
                    assert y.tolist() == [[False, True]]
                else:
                    assert y.tolist() == (arr * 2).tolist()
        bad = triton.InferInput("x", [2], "FP32")
        bad.set_data_from_numpy(np.ones(2, np.float32))
        with pytest.raises(InferenceServerException, match=r"input 'x' has shape \[2\]"):
            client.infer("tensors", [bad])
    with tc(server, "iris") as client:
        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
        x = triton.InferInput("input-0", list(rows.shape), "FP64")
        x.set_data_from_numpy(rows)
        result = client.infer("iris", [x], outputs=[triton.InferRequestedOutput("predict")])
        assert result.as_numpy("predict").tolist() == [0, 2]
        assert client.get_model_metadata("iris")["platform"] == "sklearn"


# ---------------------------------------------------------------------- a protected endpoint


def test_the_official_clients_send_a_token_and_are_refused_without_one(
    server: ServerProcess,
) -> None:
    """Every endpoint here is protected (the default): each client library carries a token
    its own way, and a missing, unknown or under-scoped one is refused as that library
    expects (openai's AuthenticationError / PermissionDeniedError, HTTP 401/403)."""
    with server.client() as admin:
        reader = admin.create_token("reader", ["read"]).token  # no `invoke`
    unknown = "pod_000000000000_" + "x" * 43

    # openai: api_key= is sent as `Authorization: Bearer`.
    base = f"{server.url}/endpoints/minilm/v1"
    good = openai.OpenAI(base_url=base, api_key=server.token, max_retries=0)
    assert len(good.embeddings.create(model="minilm", input="a dog").data) == 1
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base, api_key=unknown, max_retries=0).embeddings.create(
            model="minilm", input="a dog"
        )
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=base, api_key=reader, max_retries=0).embeddings.create(
            model="minilm", input="a dog"
        )

    # huggingface_hub: token=. Without one it sends nothing, or the local Hugging Face
    # login's token, which is no Podium token: 401 either way.
    model = f"{server.url}/endpoints/bert"
    labels = InferenceClient(model=model, token=server.token).text_classification("I love it")
    assert labels
    with pytest.raises(HfHubHTTPError) as refused:
        InferenceClient(model=model).text_classification("I love it")
    assert refused.value.response.status_code == 401

    # tritonclient: headers= on each call.
    bearer = {"Authorization": f"Bearer {server.token}"}
    url = f"127.0.0.1:{server.port}/endpoints/tensors"
    with triton.InferenceServerClient(url=url) as client:
        assert client.is_model_ready("tensors", headers=bearer)
        x = triton.InferInput("x", [1, 2], "INT32")
        x.set_data_from_numpy(np.array([[1, 2]], dtype=np.int32))
        y = client.infer("tensors", [x], headers=bearer).as_numpy("y")
        assert y is not None and y.tolist() == [[2, 4]]
        with pytest.raises(InferenceServerException) as no_token:
            client.infer("tensors", [x])
        assert no_token.value.status() == "401"
        assert not client.is_model_ready("tensors")  # 401: not ready, as far as it can tell
