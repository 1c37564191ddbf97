"""Observability (issue 12): request records and the metrics history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Hand-written to match `podium/store/tables.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_records",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("project", sa.String(16), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("route", sa.String(256), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(32), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("queue_ms", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("replica_id", sa.String(128), nullable=True),
        sa.Column("upstream_ms", sa.Float(), nullable=True),
        sa.Column("ttfb_ms", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.Column("token_id", sa.String(16), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_request_records"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_request_records_endpoint_id", "request_records", ["endpoint", "id"])
    op.create_index("ix_request_records_received_at", "request_records", ["received_at"])
    op.create_index("ix_request_records_request_id", "request_records", ["request_id"])
    op.create_table(
        "metric_points",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("errors_4xx", sa.Integer(), nullable=False),
        sa.Column("errors_5xx", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.Column("in_flight", sa.Float(), nullable=False),
        sa.Column("held", sa.Float(), nullable=False),
        sa.Column("ready", sa.Integer(), nullable=True),
        sa.Column("desired", sa.Integer(), nullable=True),
        sa.Column("cpu_percent", sa.Float(), nullable=True),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=True),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("gpu_util_percent", sa.Float(), nullable=True),
        sa.Column("gpu_memory_bytes", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("endpoint", "replica", "resolution", "ts", name="pk_metric_points"),
    )
    op.create_index("ix_metric_points_resolution_ts", "metric_points", ["resolution", "ts"])


def downgrade() -> None:
    op.drop_index("ix_metric_points_resolution_ts", table_name="metric_points")
    op.drop_table("metric_points")
    op.drop_index("ix_request_records_request_id", table_name="request_records")
    op.drop_index("ix_request_records_received_at", table_name="request_records")
    op.drop_index("ix_request_records_endpoint_id", table_name="request_records")
    op.drop_table("request_records")
