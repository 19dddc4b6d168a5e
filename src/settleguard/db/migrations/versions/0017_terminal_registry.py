"""terminal registry, telemetry, policy and findings (issue 21, helper F)

- terminal_telemetry: the latest telemetry of each terminal (TMS export or heartbeat): versions, network
  settings, SIM, sign-in, batch, battery, signal, printer, tamper, location and the registered location.
- terminal_heartbeats: a bounded history of heartbeats (terminals/repository.py keeps the latest per terminal).
- terminal_policies: per model minimum / known-bad versions, host and port, IP ranges; '*' = defaults.
- terminal_findings: findings of the telemetry checks, open or closed (one open per terminal and code).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["terminal_id"], ["terminals.id"], name=op.f(f"fk_{table}_terminal_id_terminals"))


def upgrade() -> None:
    op.create_table(
        "terminal_telemetry",
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=True),
        sa.Column("model_name", sa.String(length=32), nullable=True),
        sa.Column("os_version", sa.String(length=64), nullable=True),
        sa.Column("app_version", sa.String(length=64), nullable=True),
        sa.Column("comm_type", sa.String(length=8), nullable=True),
        sa.Column("host", sa.String(length=64), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=15), nullable=True),
        sa.Column("mask", sa.String(length=15), nullable=True),
        sa.Column("gateway", sa.String(length=15), nullable=True),
        sa.Column("dns", sa.String(length=64), nullable=True),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("iccid", sa.String(length=22), nullable=True),
        sa.Column("imei", sa.String(length=17), nullable=True),
        sa.Column("last_sign_in_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("batch_no", sa.String(length=6), nullable=True),
        sa.Column("last_heartbeat_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("battery", sa.SmallInteger(), nullable=True),
        sa.Column("charging", sa.Boolean(), nullable=True),
        sa.Column("signal_dbm", sa.SmallInteger(), nullable=True),
        sa.Column("reconnects", sa.Integer(), nullable=True),
        sa.Column("echo_latency_ms", sa.Integer(), nullable=True),
        sa.Column("echo_loss_pct", sa.SmallInteger(), nullable=True),
        sa.Column("printer", sa.String(length=8), nullable=True),
        sa.Column("tamper", sa.Boolean(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        sa.Column("home_lat", sa.Float(), nullable=True),
        sa.Column("home_lng", sa.Float(), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        _fk("terminal_telemetry"),
        sa.PrimaryKeyConstraint("terminal_id", name=op.f("pk_terminal_telemetry")),
    )
    op.create_table(
        "terminal_heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("battery", sa.SmallInteger(), nullable=True),
        sa.Column("signal_dbm", sa.SmallInteger(), nullable=True),
        sa.Column("reconnects", sa.Integer(), nullable=True),
        sa.Column("echo_latency_ms", sa.Integer(), nullable=True),
        sa.Column("echo_loss_pct", sa.SmallInteger(), nullable=True),
        sa.Column("ip", sa.String(length=15), nullable=True),
        sa.Column("printer", sa.String(length=8), nullable=True),
        sa.Column("tamper", sa.Boolean(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lng", sa.Float(), nullable=True),
        _fk("terminal_heartbeats"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_heartbeats")),
        sa.UniqueConstraint("terminal_id", "at", name="uq_terminal_heartbeats_terminal_at"),
    )
    op.create_table(
        "terminal_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("min_firmware", sa.String(length=64), nullable=True),
        sa.Column("min_app", sa.String(length=64), nullable=True),
        sa.Column("bad_firmware", sa.JSON(), nullable=False),
        sa.Column("bad_app", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("ip_ranges", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_policies")),
        sa.UniqueConstraint("model", name=op.f("uq_terminal_policies_model")),
    )
    op.create_table(
        "terminal_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("open_key", sa.String(length=32), nullable=True),
        sa.Column("detail_zh", sa.String(length=256), nullable=False),
        sa.Column("detail_en", sa.String(length=256), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        _fk("terminal_findings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_findings")),
        sa.UniqueConstraint("terminal_id", "open_key", name="uq_terminal_findings_terminal_open"),
    )
    op.create_index("ix_terminal_findings_status_terminal", "terminal_findings", ["status", "terminal_id"])


def downgrade() -> None:
    op.drop_index("ix_terminal_findings_status_terminal", table_name="terminal_findings")
    op.drop_table("terminal_findings")
    op.drop_table("terminal_policies")
    op.drop_table("terminal_heartbeats")
    op.drop_table("terminal_telemetry")
