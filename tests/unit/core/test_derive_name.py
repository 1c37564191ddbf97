"""Names made from a model reference when a create gives none (`derive_name`): valid under
the name rule whatever the reference."""

from __future__ import annotations

import pytest

from podium.core.ids import NAME_RE
from podium.core.spec import derive_name


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("hf://google/gemma-1.1-2b-it", "gemma-1-1-2b-it-x7k"),  # dots
        ("hf://sentence-transformers/all_MiniLM_L6_v2", "all-minilm-l6-v2-x7k"),  # _ and case
        ("hf://Qwen/Qwen2.5-0.5B-Instruct@main", "qwen2-5-0-5b-instruct-x7k"),  # a revision
        ("hf://openai-community/gpt2", "gpt2-x7k"),
        ("hf://TheBloke/1B-model", "ep-1b-model-x7k"),  # a leading digit
        ("hf://org/0_0", "ep-0-0-x7k"),  # digits only
        ("iris", "iris-x7k"),  # a pushed model
        ("iris:3", "iris-x7k"),  # its version is not part of the name
    ],
)
def test_a_derived_name_follows_the_model(model: str, name: str) -> None:
    assert derive_name(model, "x7k") == name
    assert NAME_RE.match(name)


def test_a_long_reference_is_cut_to_fit_with_its_suffix() -> None:
    model = "hf://org/" + "a-very-long-model-name" * 5
    name = derive_name(model, "abcd1234")
    assert NAME_RE.match(name)
    assert len(name) <= 48 and name.endswith("-abcd1234")
    assert not name.removesuffix("-abcd1234").endswith("-")  # no double hyphen at the cut
