"""Initial schema: model versions, endpoints, revisions, replicas, events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Hand-written to match `podium/store/tables.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("framework", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
    )
    op.create_table(
        "endpoints",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("model_ref", sa.Text(), nullable=False),
        sa.Column("desired_replicas", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("name", name="pk_endpoints"),
    )
    op.create_table(
        "revisions",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("model_ref", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["endpoint"],
            ["endpoints.name"],
            name="fk_revisions_endpoint_endpoints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint", "number", name="pk_revisions"),
    )
    op.create_table(
        "replicas",
        sa.Column("replica_id", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        _at("started_at"),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("log_path", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name="pk_replicas"),
    )
    op.create_index("ix_replicas_endpoint", "replicas", ["endpoint"])
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("endpoint", sa.String(64), nullable=False),
        _at("at"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_endpoint_id", "events", ["endpoint", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_endpoint_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_replicas_endpoint", table_name="replicas")
    op.drop_table("replicas")
    op.drop_table("revisions")
    op.drop_table("endpoints")
    op.drop_table("model_versions")
