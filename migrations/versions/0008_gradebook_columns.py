"""Gradebook columns as teachers read them, and passback that knows when a send may have arrived

- progress_columns: the courses whose instructor chose the "Bargaining Certificate progress" column (one per
  course). Courses that already have that column (a line item the tool made with its tag) keep it.
- workshops.gradebook_column: "hours" (hours attended, out of the module's hours; what every existing
  workshop's column is) or "score" (out of 100).
- outbox_scores.delivery_uncertain: an attempt may have reached the LMS without its answer being heard.
- outbox_scores.line_item_label: the column's name for the Gradebook sync page.

Revision ID: 0008_gradebook_columns
Revises: 0007_lms_identity
Create Date: 2026-11-28 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008_gradebook_columns"
down_revision = "0007_lms_identity"
branch_labels = None
depends_on = None

PROGRESS_TAG = "bargaining-certificate-progress"


def upgrade():
    op.create_table(
        "progress_columns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_account_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_progress_columns_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_progress_columns_requested_by_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_columns")),
        sa.UniqueConstraint("course_id", name=op.f("uq_progress_columns_course_id")),
    )
    with op.batch_alter_table("workshops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gradebook_column", sa.String(length=10), server_default="hours", nullable=False))
    with op.batch_alter_table("outbox_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_uncertain", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("line_item_label", sa.String(length=300), nullable=True))
    # Courses that already have the progress column keep it (and keep getting their members' hours).
    op.execute(
        sa.text(
            "INSERT INTO progress_columns (course_id, requested_at) "
            "SELECT DISTINCT course_id, CURRENT_TIMESTAMP FROM line_items "
            "WHERE tag = :tag AND course_id IS NOT NULL"
        ).bindparams(tag=PROGRESS_TAG)
    )


def downgrade():
    with op.batch_alter_table("outbox_scores", schema=None) as batch_op:
        batch_op.drop_column("line_item_label")
        batch_op.drop_column("delivery_uncertain")
    with op.batch_alter_table("workshops", schema=None) as batch_op:
        batch_op.drop_column("gradebook_column")
    op.drop_table("progress_columns")
