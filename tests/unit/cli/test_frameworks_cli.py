"""`podium frameworks [QUERY]` against the real API (in-process), and the SDK call under it."""

from __future__ import annotations

import json

from podium.client import PodiumClient
from podium.runtimes.registry import known_runtimes
from tests.unit.cli.conftest import Cli


def test_the_table_lists_every_framework_with_what_it_serves(cli: Cli) -> None:
    result = cli("frameworks")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SERVES", "TASKS", "PROTOCOLS", "GPU", "USABLE"]
    firsts = [line.split()[0] for line in lines[1:] if line and not line.startswith(" ")]
    assert firsts == known_runtimes()
    sklearn = next(line for line in lines if line.startswith("sklearn "))
    assert "builtin" in sklearn and "hf, v2" in sklearn and sklearn.rstrip().endswith("yes")
    assert cli.api.requests == ["GET /api/v1/frameworks"]


def test_a_query_narrows_the_list_and_json_is_the_api_answer(cli: Cli) -> None:
    result = cli("frameworks", "GGUF-nothing")
    assert (result.exit_code, result.stdout) == (0, "no framework matches 'GGUF-nothing'\n")
    result = cli("frameworks", "quantized", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert (entry["name"], entry["kind"], entry["gpu"]) == ("llama.cpp", "preset", "optional")
    assert entry["requires"] == "program llama-server"


def test_the_sdk_call(cli: Cli) -> None:
    with PodiumClient(cli.api.url) as client:
        found = client.frameworks("text-generation")
        assert {f.name for f in found} == {"llama.cpp", "sglang", "tgi", "transformers", "vllm"}
        assert [f.name for f in client.frameworks()] == known_runtimes()


def test_a_query_too_long_is_the_servers_422(cli: Cli) -> None:
    result = cli("frameworks", "x" * 65)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: q: ")
