"""The staff's console: platforms can be disabled, refused launches are kept, launches found by platform and time

Revision ID: 0012_console
Revises: 0011_mail_outbox
Create Date: 2026-11-28 13:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012_console"
down_revision = "0011_mail_outbox"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
    op.create_index("ix_launches_platform_id_created_at", "launches", ["platform_id", "created_at"], unique=False)
    op.create_table(
        "launch_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launch_refusals")),
        sa.UniqueConstraint(
            "minute",
            "platform_id",
            "address",
            "reason",
            name=op.f("uq_launch_refusals_minute_platform_id_address_reason"),
        ),
    )
    with op.batch_alter_table("launch_refusals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_launch_refusals_minute"), ["minute"], unique=False)


def downgrade():
    with op.batch_alter_table("launch_refusals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_launch_refusals_minute"))
    op.drop_table("launch_refusals")
    op.drop_index("ix_launches_platform_id_created_at", table_name="launches")
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
