"""Check a model bundle's `requirements.txt` against what is installed (never installs).

Each line is a PEP 508 requirement (`name[extras] specifier ; marker`); blank lines and
`#` comments are skipped, and so are pip options (`-r other.txt`, `--index-url …`), which
say where to install from rather than what must be present. Requirements whose marker
does not apply to this interpreter are skipped.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from podium.core.errors import LoadError


def parse_requirements(text: str, source: str = "requirements.txt") -> list[Requirement]:
    reqs: list[Requirement] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as e:
            raise LoadError(f"{source} line {number}: invalid requirement {line!r}: {e}") from None
    return reqs


def unmet(reqs: list[Requirement]) -> list[str]:
    """Human descriptions of the requirements this interpreter does not meet."""
    problems: list[str] = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate():
            continue
        wanted = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
        wanted += str(req.specifier)
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{wanted} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{wanted} ({installed} installed)")
    return problems


def check_requirements(file: Path) -> None:
    """Raise LoadError naming every unmet requirement in `file` (if it exists)."""
    if not file.is_file():
        return
    problems = unmet(parse_requirements(file.read_text(encoding="utf-8"), file.name))
    if problems:
        raise LoadError(f"missing packages: {', '.join(problems)}; install them on the backend")
