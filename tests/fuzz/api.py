"""`make fuzz`: schemathesis against a real `podium up` (not in CI; minutes, not seconds).

Every phase runs, stateful included (links between operations inferred from the schema and
from responses), with many more examples than CI's quick pass in
tests/unit/api/test_openapi_fuzz.py. Only 5xx answers fail the run: the API's job under
fuzzing is to refuse bad input with a 4xx problem, never to break.

    python -m tests.fuzz.api [--max-examples N] [--max-time S] [extra schemathesis args]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.server import running_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--max-time", type=int, default=600, help="seconds for the whole run")
    args, extra = parser.parse_known_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="podium-fuzz-") as home,
        running_server(Path(home)) as server,
    ):
        # Something real to find besides 404s: a model and an endpoint using it.
        with server.client() as client:
            model = Path(home) / "model.skops"
            model.write_bytes(b"fuzz")
            client.push_model(model, "iris", framework="sklearn")
            client.deploy(
                {
                    "name": "iris-ep",
                    "model": "iris",
                    "framework": "sklearn",
                    "scaling": {"min_replicas": 0},  # no replica: the API is the subject
                }
            )
        command = [
            *(sys.executable, "-m", "schemathesis.cli", "run"),
            f"{server.url}/api/v1/openapi.json",
            "--phases=examples,coverage,fuzzing,stateful",
            "--checks=not_a_server_error",
            f"--max-examples={args.max_examples}",
            f"--max-time={args.max_time}",
            "--request-timeout=30",
            "--workers=1",
            "--suppress-health-check=all",
            # `logs?follow=true` streams until the client leaves: a read timeout, not a bug.
            "--exclude-path-regex=/logs$",
            *extra,
        ]
        print("+", " ".join(command), flush=True)
        result = subprocess.run(command, check=False)
        log = server.log_path.read_text(errors="replace")
        if "unhandled error" in log:
            print("--- the server logged unhandled errors (last 4000 chars) ---")
            print(log[-4000:])
            return result.returncode or 1
        return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
