"""The controller's memory of each endpoint (crash streaks, failure, last scale decision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Hand-written to match `podium/store/tables.py` (`EndpointMemoryRow`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "endpoint_memory",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("crash_streak", sa.Integer(), nullable=False),
        _at("crashed_at"),
        _at("backoff_until"),
        sa.Column("serving_crashes", sa.Integer(), nullable=False),
        sa.Column("serving_revision", sa.Integer(), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("failure_generation", sa.Integer(), nullable=True),
        sa.Column("scale_desired", sa.Integer(), nullable=True),
        sa.Column("scale_reason", sa.Text(), nullable=True),
        _at("scaled_at"),
        _at("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint"],
            ["endpoints.name"],
            name="fk_endpoint_memory_endpoint_endpoints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint", name="pk_endpoint_memory"),
    )


def downgrade() -> None:
    op.drop_table("endpoint_memory")
