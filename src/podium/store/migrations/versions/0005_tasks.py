"""Async tasks, batch jobs, files and callback keys (issue 13); request records name their task.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Hand-written to match `podium/store/tables.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("request_records") as batch:
        batch.add_column(sa.Column("task_id", sa.String(32), nullable=True))
    op.create_table(
        "tasks",
        sa.Column("seq", _ID, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_s", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("result_status", sa.Integer(), nullable=True),
        sa.Column("result_type", sa.String(128), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("result_file", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_state", sa.String(16), nullable=True),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_next_at", sa.Float(), nullable=True),
        sa.Column("callback_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_tasks"),
        sa.UniqueConstraint("id", name="uq_tasks_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_tasks_status_endpoint_priority_seq", "tasks", ["status", "endpoint", "priority", "seq"]
    )
    op.create_index("ix_tasks_status_lease_until", "tasks", ["status", "lease_until"])
    op.create_index("ix_tasks_expires_at", "tasks", ["expires_at"])
    op.create_index("ix_tasks_callback_next_at", "tasks", ["callback_next_at"])
    op.create_index("ix_tasks_job_id_line", "tasks", ["job_id", "line"])
    op.create_index(
        "uq_tasks_endpoint_idempotency_key", "tasks", ["endpoint", "idempotency_key"], unique=True
    )
    op.create_table(
        "task_attempts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("replica_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_task_attempts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_attempts_task_id_attempt", "task_attempts", ["task_id", "attempt"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("input_file", sa.String(32), nullable=False),
        sa.Column("output_file", sa.String(32), nullable=True),
        sa.Column("error_file", sa.String(32), nullable=True),
        sa.Column("lines_total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_project_created_at", "jobs", ["project", "created_at"])
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    op.create_index("ix_files_project_created_at", "files", ["project", "created_at"])
    op.create_table(
        "callback_keys",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name="pk_callback_keys"),
    )


def downgrade() -> None:
    op.drop_table("callback_keys")
    op.drop_index("ix_files_project_created_at", table_name="files")
    op.drop_table("files")
    op.drop_index("ix_jobs_project_created_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_task_attempts_task_id_attempt", table_name="task_attempts")
    op.drop_table("task_attempts")
    for name in (
        "uq_tasks_endpoint_idempotency_key",
        "ix_tasks_job_id_line",
        "ix_tasks_callback_next_at",
        "ix_tasks_expires_at",
        "ix_tasks_status_lease_until",
        "ix_tasks_status_endpoint_priority_seq",
    ):
        op.drop_index(name, table_name="tasks")
    op.drop_table("tasks")
    with op.batch_alter_table("request_records") as batch:
        batch.drop_column("task_id")
