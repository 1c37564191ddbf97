"""Access control (issue 11): projects, tokens, secrets, the audit log, replica usage, and
the project of each endpoint and model.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

Hand-written to match `podium/store/tables.py`. Existing endpoints and models land in the
`default` project, which this migration creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    for table in ("endpoints", "model_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("project", sa.String(16), nullable=False, server_default="default")
            )
    projects = op.create_table(
        "projects",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("max_endpoints", sa.Integer(), nullable=True),
        sa.Column("max_replicas", sa.Integer(), nullable=True),
        sa.Column("max_cpus", sa.Float(), nullable=True),
        sa.Column("max_gpus", sa.Integer(), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("name", name="pk_projects"),
    )
    op.bulk_insert(projects, [{"name": "default", "created_at": datetime.now(UTC)}])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("projects", sa.JSON(), nullable=True),
        sa.Column("creator", sa.String(64), nullable=False),
        sa.Column("rate_rps", sa.Float(), nullable=True),
        sa.Column("rate_burst", sa.Integer(), nullable=True),
        _at("created_at"),
        _at("expires_at", nullable=True),
        _at("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
    )
    op.create_table(
        "secrets",
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("project", "name", name="pk_secrets"),
    )
    op.create_table(
        "audit",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        _at("at"),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_kind", sa.String(32), nullable=False),
        sa.Column("object_name", sa.String(128), nullable=True),
        sa.Column("project", sa.String(16), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("result", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_project_id", "audit", ["project", "id"])
    op.create_table(
        "replica_usage",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("replica_id", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("instance_type", sa.String(64), nullable=False),
        _at("started_at"),
        _at("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replica_usage"),
        sa.UniqueConstraint("replica_id", name="uq_replica_usage_replica_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_replica_usage_project_started_at", "replica_usage", ["project", "started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_replica_usage_project_started_at", table_name="replica_usage")
    op.drop_table("replica_usage")
    op.drop_index("ix_audit_project_id", table_name="audit")
    op.drop_table("audit")
    op.drop_table("secrets")
    op.drop_table("tokens")
    op.drop_table("projects")
    for table in ("model_versions", "endpoints"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("project")
