"""`podium models push` of identical contents says the version is already stored."""

from __future__ import annotations

from pathlib import Path

from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess


def test_pushing_identical_contents_again_says_it_is_already_stored(
    server: ServerProcess, tmp_path: Path
) -> None:
    model = train_iris_skops(tmp_path / "dup-iris")
    push = ("models", "push", str(model), "--name", "dup-iris", "--framework", "sklearn")

    first = server.cli(*push)
    again = server.cli(*push)

    assert first.stdout.startswith("pushed dup-iris:1: "), first.stdout
    assert again.stdout.strip() == "already stored as dup-iris:1 (identical contents)"
    with server.client() as c:
        assert c.model("dup-iris").latest == 1
        assert c.push_model(model, "dup-iris", framework="sklearn").created is False
