"""Several server processes on one database (issue 16): the controller lease with its
fencing number, the published routing table, and the gateways' load reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Hand-written to match `podium/store/tables.py`. The lease row exists from the start
(epoch 0, no holder), so taking the lead is always an UPDATE of one row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    lease = op.create_table(
        "controller_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controller_lease")),
    )
    op.bulk_insert(lease, [{"id": 1, "epoch": 0, "holder": None, "acquired_at": None}])
    op.create_table(
        "routing_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_state")),
    )
    op.create_table(
        "gateway_reports",
        sa.Column("gateway_id", sa.String(length=128), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id", name=op.f("pk_gateway_reports")),
    )


def downgrade() -> None:
    op.drop_table("gateway_reports")
    op.drop_table("routing_state")
    op.drop_table("controller_lease")
