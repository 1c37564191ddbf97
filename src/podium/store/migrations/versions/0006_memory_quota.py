"""A project's memory quota, and the size of a `resources` (custom) replica on its usage row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Hand-written to match `podium/store/tables.py`. Every new column is nullable: no quota, and
a named instance type's row (priced by name), as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("max_memory_mb", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("replica_usage") as batch:
        batch.add_column(sa.Column("cpus", sa.Float(), nullable=True))
        batch.add_column(sa.Column("memory_mb", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("gpus", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("replica_usage") as batch:
        batch.drop_column("gpus")
        batch.drop_column("memory_mb")
        batch.drop_column("cpus")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("max_memory_mb")
