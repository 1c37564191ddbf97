"""The secret box: its key file (created once, 0600, never replaced behind the secrets'
back) and what it says when a ciphertext cannot be opened."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from podium.core.errors import Unavailable
from podium.store.secret_box import SecretBox

VALUE = "s3cret-value-ünïcode"


def test_the_key_is_created_once_with_mode_0600_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret.key"
    box = SecretBox(path)
    ciphertext = box.encrypt(VALUE, may_create=True)
    assert VALUE not in ciphertext
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_bytes()
    assert box.encrypt("other", may_create=True)  # the key exists: kept as it is
    assert path.read_bytes() == key
    assert SecretBox(path).decrypt(ciphertext, name="a-secret") == VALUE


def test_processes_creating_the_key_at_once_agree_on_one(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    texts: list[str] = []
    go = threading.Barrier(8)

    def make() -> None:
        go.wait()
        texts.append(SecretBox(path).encrypt(VALUE, may_create=True))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(texts) == 8
    assert {SecretBox(path).decrypt(t, name="x") for t in texts} == {VALUE}


def test_a_missing_or_corrupt_key_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    ciphertext = SecretBox(path).encrypt(VALUE, may_create=True)
    path.unlink()
    with pytest.raises(Unavailable, match="is missing") as missing:
        SecretBox(path).decrypt(ciphertext, name="db-pass")
    with pytest.raises(Unavailable, match="is missing"):
        SecretBox(path).encrypt(VALUE, may_create=False)
    assert missing.value.field == "secret_key" and not path.exists()
    path.write_text("garbage\n")
    with pytest.raises(Unavailable, match="corrupt"):
        SecretBox(path).decrypt(ciphertext, name="db-pass")


def test_another_key_names_the_secret_it_cannot_open(tmp_path: Path) -> None:
    ciphertext = SecretBox(tmp_path / "a.key").encrypt(VALUE, may_create=True)
    other = SecretBox(tmp_path / "b.key")
    other.encrypt("x", may_create=True)
    with pytest.raises(Unavailable, match="secret 'db-pass' cannot be decrypted") as e:
        other.decrypt(ciphertext, name="db-pass")
    assert VALUE not in str(e.value)
