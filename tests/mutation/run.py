"""`make mutants`: mutation testing of the modules that decide correctness (not in CI).

Each target is one or a few modules and the unit tests meant to guard them. For every target
the run copies `src/`, `tests/` and `pyproject.toml` into `.mutants/<target>/`, adds a
`[tool.mutmut]` section naming the modules and the tests, and runs mutmut there (mutmut
changes one thing at a time in the code, an operator, a constant, a condition, and runs the
tests that cover the mutated function; a mutant the tests do not notice "survives"). The
working tree is never touched, so targets run one after another without interfering.

    python -m tests.mutation.run [TARGET ...] [--max-children N]

Prints a table per target (mutants, killed, survived, other) and writes it, with the name of
every surviving mutant, to `.mutants/summary.json` (which keeps the last run of each target).
Read a survivor's diff with `cd .mutants/<target> && ../../.venv/bin/mutmut show <name>`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".mutants"


@dataclass(frozen=True)
class Target:
    """Modules to mutate and the unit tests that must notice every change to them."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "reconciler": Target(
        ("src/podium/control/reconciler.py",),
        ("tests/unit/control",),
    ),
    "autoscaler": Target(
        ("src/podium/control/scale_policy.py",),
        ("tests/unit/control",),
    ),
    "activator": Target(
        ("src/podium/gateway/activator.py",),
        ("tests/unit/gateway",),
    ),
    "proxy-balancer": Target(
        ("src/podium/gateway/proxy.py", "src/podium/gateway/balancer.py"),
        ("tests/unit/gateway",),
    ),
    # The request pipeline every invocation goes through (issue 10): refusals, admission,
    # the one re-admission after an unreached replica, metering and the stages.
    "pipeline": Target(
        ("src/podium/gateway/pipeline.py",),
        ("tests/unit/gateway",),
    ),
    "unpack": Target(
        ("src/podium/artifacts/unpack.py",),
        ("tests/unit/artifacts",),
    ),
    # The error rule (statuses on the classes, the one problem+json builder), the control
    # plane's problems and the gateway's own: what a client reads.
    # Only the tests about answering errors: every test in tests/unit/api builds an app and
    # so "covers" problems.install, and mutmut would rerun them all for each of its mutants.
    "errors": Target(
        (
            "src/podium/core/errors.py",
            "src/podium/core/problems.py",
            "src/podium/api/problems.py",
            "src/podium/gateway/responses.py",
        ),
        (
            "tests/unit/api/test_problems.py",
            "tests/unit/api/test_status_mapping.py",
            "tests/unit/api/test_server_errors.py",
            "tests/unit/api/test_system.py",
            "tests/unit/gateway/test_problem_responses.py",
            "tests/unit/gateway/test_openai_errors.py",
            "tests/unit/gateway/test_openai_router.py",
            "tests/unit/api/test_limits.py",  # the body limit's 413 (core/problems.problem_body)
            "tests/unit/replica/test_app.py",  # the replica's answers (core/problems.error_doc)
        ),
    ),
}


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str, target: Target) -> Path:
    """A fresh copy of the tree with a mutmut section for this target only."""
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    config = (ROOT / "pyproject.toml").read_text()
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list(target.modules)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(target.tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    )
    (work / "pyproject.toml").write_text(config)
    return work


def results(work: Path, mutmut: Path) -> dict[str, str]:
    """Each mutant's name and status ("killed", "survived", "timeout", ...)."""
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    statuses: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, status = line.strip().rpartition(": ")
        if sep and key.startswith("podium."):
            statuses[key] = status.strip()
    return statuses


def run_target(name: str, target: Target, max_children: int) -> dict[str, object]:
    mutmut = Path(sys.executable).with_name("mutmut")
    work = prepare(name, target)
    env = {**os.environ, "PY_COLORS": "0"}
    print(f"== {name}: {', '.join(target.modules)} against {', '.join(target.tests)}", flush=True)
    with (work / "mutmut.log").open("w") as log:
        subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    statuses = results(work, mutmut)
    counts = Counter(statuses.values())
    total = len(statuses)
    survived = sorted(k for k, v in statuses.items() if v == "survived")
    return {
        "modules": list(target.modules),
        "tests": list(target.tests),
        "mutants": total,
        "killed": counts.get("killed", 0),
        "survived": len(survived),
        "other": {k: v for k, v in counts.items() if k not in ("killed", "survived")},
        "survived_pct": round(100 * len(survived) / total, 1) if total else 0.0,
        "survivors": survived,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGETS))
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    summary = {name: run_target(name, TARGETS[name], args.max_children) for name in names}
    WORK.mkdir(exist_ok=True)
    path = WORK / "summary.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}  # other targets' last runs
    path.write_text(json.dumps({**earlier, **summary}, indent=2) + "\n")
    print(f"\n{'target':16} {'mutants':>8} {'killed':>7} {'survived':>9} {'%':>6}  other")
    for name, row in summary.items():
        print(
            f"{name:16} {row['mutants']:>8} {row['killed']:>7} {row['survived']:>9}"
            f" {row['survived_pct']:>5}%  {row['other'] or ''}"
        )
    print(f"\nsurvivors listed in {WORK / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
