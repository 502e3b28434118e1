"""case files, and the audit log's purge floor (issue #19: cases and retention)

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06 16:30:00

The audit log stays append-only, except that the purge (memory/retention.py) may delete rows older
than the floor it writes, inside its own transaction, into ``audit_purge_floor``: the delete
trigger of migration 0002 is replaced by one that lets only those rows go.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

RAISE_SQLITE = "SELECT RAISE(ABORT, 'the audit log is append-only')"


def upgrade() -> None:
    op.create_table(
        "case_file",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("community_id", sa.String(length=40), nullable=False),
        sa.Column("grid_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_by_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_file")),
    )
    op.create_index("ix_case_file_community", "case_file", ["community_id", "status"], unique=False)
    op.create_index(op.f("ix_case_file_closed_at"), "case_file", ["closed_at"], unique=False)
    op.create_table(
        "case_pin",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.String(length=32), nullable=True),
        sa.Column("pinned_by", sa.String(length=64), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_case_pin_case_id_case_file"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_pin")),
    )
    op.create_index(op.f("ix_case_pin_case_id"), "case_pin", ["case_id"], unique=False)
    op.create_index(op.f("ix_case_pin_evidence"), "case_pin", ["evidence"], unique=False)
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("author_name", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case_file.id"], name=op.f("fk_case_note_case_id_case_file"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note")),
    )
    op.create_index(op.f("ix_case_note_case_id"), "case_note", ["case_id"], unique=False)
    op.create_table(
        "audit_purge_floor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_purge_floor")),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "WHEN NOT EXISTS (SELECT 1 FROM audit_purge_floor f WHERE OLD.at < f.before) "
            f"BEGIN {RAISE_SQLITE}; END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_purge_floor f WHERE OLD.at < f.before) THEN "
            "RETURN OLD; END IF; "
            "RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege'; "
            "END $$ LANGUAGE plpgsql"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN {RAISE_SQLITE}; END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege'; "
            "END $$ LANGUAGE plpgsql"
        )
    op.drop_table("audit_purge_floor")
    op.drop_index(op.f("ix_case_note_case_id"), table_name="case_note")
    op.drop_table("case_note")
    op.drop_index(op.f("ix_case_pin_evidence"), table_name="case_pin")
    op.drop_index(op.f("ix_case_pin_case_id"), table_name="case_pin")
    op.drop_table("case_pin")
    op.drop_index(op.f("ix_case_file_closed_at"), table_name="case_file")
    op.drop_index("ix_case_file_community", table_name="case_file")
    op.drop_table("case_file")
