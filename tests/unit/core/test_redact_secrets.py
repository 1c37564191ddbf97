"""`core.redact.Secrets`: every known value becomes `***`, in text and in event data."""

from __future__ import annotations

from podium.core.redact import Secrets


def test_known_values_are_masked_longest_first() -> None:
    s = Secrets(["abcd1234", "abcd"])
    s.add(["x.y*z+"])  # regex characters are taken literally
    assert s.text("token=abcd1234 short=abcd re=x.y*z+ xyz") == "token=*** short=*** re=*** xyz"


def test_data_is_masked_inside_dicts_and_lists() -> None:
    s = Secrets(["hunter22"])
    data = {"a": "pw hunter22", "b": ["hunter22", 3, {"c": "hunter22!"}], "n": None}
    assert s.data(data) == {"a": "pw ***", "b": ["***", 3, {"c": "***!"}], "n": None}


def test_nothing_known_changes_nothing_and_tiny_values_are_not_masked() -> None:
    assert Secrets().text("plain") == "plain"
    assert Secrets(["ab"]).text("about abba") == "about abba"  # under 4 characters
