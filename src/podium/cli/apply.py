"""`podium plan`, `podium apply` and `podium export`: endpoints as code.

`plan` (and `apply --dry-run`) exits 0 when nothing would change, 2 when something would,
1 on any error, a command-line mistake included, like `terraform plan -detailed-exitcode`
(`cli._common.usage_status`); `apply` exits 0 or 1. `apply` without `--yes` carries out the
plan it showed or none: it sends that plan's fingerprint (the server's changes and the
model folders' digests), and the client (before pushing) or the server (after) refuses when
the plan differs by then.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from podium.cli._common import ProjectOpt, client_for
from podium.client import Invalid, PodiumError
from podium.core.access import DEFAULT_PROJECT
from podium.core.apply_schemas import (
    DEFAULT_MANAGER,
    PRUNE_NEEDS_MANAGER,
    Change,
    ChangeAction,
    Plan,
)
from podium.core.manifest import DocumentKind

FileOpt = Annotated[
    list[Path],
    typer.Option(
        "--file",
        "-f",
        help="A YAML file (one or more documents) or a folder of *.yaml/*.yml; repeatable.",
    ),
]
PruneOpt = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Also delete endpoints carrying the --managed-by label (required) that no "
        "document names (in the projects the documents touch).",
    ),
]
ManagerOpt = Annotated[
    str | None,
    typer.Option(
        "--managed-by",
        help=f"The managed-by label this apply owns (default {DEFAULT_MANAGER}); "
        "required with --prune.",
    ),
]

_SIGN = {
    ChangeAction.CREATE: "+",
    ChangeAction.UPDATE_REVISION: "~",
    ChangeAction.UPDATE_IN_PLACE: "~",
    ChangeAction.DELETE: "-",
}
_VERB = {
    ChangeAction.CREATE: "create",
    ChangeAction.UPDATE_REVISION: "update",
    ChangeAction.UPDATE_IN_PLACE: "update",
    ChangeAction.DELETE: "delete",
}
_HOW = {
    ChangeAction.UPDATE_REVISION: " (new revision)",
    ChangeAction.UPDATE_IN_PLACE: " (in place)",
}
EXIT_CHANGES = 2


def plan(
    ctx: typer.Context,
    files: FileOpt,
    prune: PruneOpt = False,
    managed_by: ManagerOpt = None,
) -> None:
    """Show what `podium apply` would change. Exit 0: no changes, 2: changes, 1: error."""
    result = _run(ctx, files, dry_run=True, prune=prune, managed_by=managed_by)
    typer.echo(render_plan(result))
    raise typer.Exit(EXIT_CHANGES if result.changed else 0)


def apply(
    ctx: typer.Context,
    files: FileOpt,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print the plan (exit codes as `plan`).")
    ] = False,
    prune: PruneOpt = False,
    managed_by: ManagerOpt = None,
) -> None:
    """Converge the server to the documents: create what is missing, update what differs
    (a new revision only when a revision field changed), leave the rest."""
    if dry_run:
        plan(ctx, files, prune=prune, managed_by=managed_by)
        return
    if not yes:
        preview = _run(ctx, files, dry_run=True, prune=prune, managed_by=managed_by)
        typer.echo(render_plan(preview))
        if not preview.changed:
            return
        confirm()
    expect = None if yes else preview.fingerprint  # this plan, or none
    result = _run(ctx, files, dry_run=False, prune=prune, managed_by=managed_by, expect=expect)
    if yes:
        typer.echo(render_plan(result))
    s = result.summary
    updated = s.update_revision + s.update_in_place
    typer.echo(f"Applied: {s.create} created, {updated} updated, {s.delete} deleted.")


def confirm() -> None:
    """The user's yes to the plan shown (a terminal's); else the apply stops."""
    if not sys.stdin.isatty():
        raise Invalid(
            "not applying without confirmation: stdin is not a terminal; "
            "check the plan and pass --yes",
            field="--yes",
        )
    typer.confirm("Apply these changes?", abort=True)


def export(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The endpoint to export.")] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every endpoint you may read, one document each.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (default: stdout).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Print the YAML `podium apply` accepts for an endpoint made by hand (or for all)."""
    if (name is None) == (not every):
        raise Invalid("name one endpoint, or give --all", field="name")
    client = client_for(ctx)
    if every:
        docs = [client.export(ep.name, ep.project) for ep in client.endpoints(project=project)]
    else:
        assert name is not None
        docs = [client.export(name, project)]
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(docs)} document{'s' if len(docs) != 1 else ''} to {output}")


# ---------------------------------------------------------------- helpers


def _run(
    ctx: typer.Context,
    files: list[Path],
    *,
    dry_run: bool,
    prune: bool,
    managed_by: str | None,
    expect: str | None = None,
) -> Plan:
    if prune and managed_by is None:
        raise Invalid(PRUNE_NEEDS_MANAGER, field="managed-by")
    documents, origins = load_documents(files)
    try:
        return client_for(ctx).apply(
            documents, dry_run=dry_run, prune=prune, managed_by=managed_by, expect=expect
        )
    except PodiumError as e:
        raise _located(e, origins) from None


def load_documents(files: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every document of `files` (folders: their *.yaml/*.yml, sorted), with relative
    `path` / `from_file` made absolute against the file's folder, and where each came from
    (`FILE, document N`)."""
    if not files:
        raise Invalid("give -f FILE or -f FOLDER", field="file")
    paths: list[Path] = []
    for given in files:
        given = given.expanduser()
        if given.is_dir():
            found = sorted([*given.glob("*.yaml"), *given.glob("*.yml")])
            if not found:
                raise Invalid(f"{given} holds no *.yaml or *.yml file", field="file")
            paths += found
        else:
            paths.append(given)
    documents: list[dict[str, Any]] = []
    origins: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        except OSError as e:
            raise Invalid(f"cannot read {path}: {e.strerror or e}", field="file") from None
        except yaml.YAMLError as e:
            message = f"{path} is not valid YAML: {e}".replace("\n", " ")
            raise Invalid(message, field="file") from None
        for n, doc in enumerate(loaded, 1):
            if isinstance(doc, dict):
                for key in ("path", "from_file"):
                    if isinstance(doc.get(key), str):
                        doc[key] = str((path.parent / Path(doc[key]).expanduser()).absolute())
            documents.append(doc)
            origins.append(f"{path}, document {n}")
    return documents, origins


def _located(error: PodiumError, origins: list[str]) -> PodiumError:
    """The error with the file and the document it is about, when it names one."""
    field = error.field or ""
    text = f"{field} {error.message}"
    for i in reversed(range(len(origins))):
        if f"documents[{i}]" in text:
            error.message = f"{error.message} (in {origins[i]})"
            break
    return error


def render_plan(result: Plan) -> str:
    """The plan as Terraform prints one: `+ create endpoint iris`, then `field: old → new`."""
    lines: list[str] = []
    for change in result.changes:
        if change.action is ChangeAction.NO_CHANGE:
            continue
        lines.append(_headline(change))
        lines += [f"    {f.field}: {_value(f.old)} → {_value(f.new)}" for f in change.fields]
    if not lines:
        return "No changes."
    s = result.summary
    updated = s.update_revision + s.update_in_place
    verb = "Plan" if result.dry_run else "Done"
    lines.append(f"{verb}: {s.create} to create, {updated} to update, {s.delete} to delete.")
    return "\n".join(lines)


def _headline(change: Change) -> str:
    where = ""
    if change.project != DEFAULT_PROJECT and change.kind is not DocumentKind.PROJECT:
        where = f" (project {change.project})"
    what = f"{change.kind.value} {change.name}{where}{_HOW.get(change.action, '')}"
    return f"{_SIGN[change.action]} {_VERB[change.action]} {what}"


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
