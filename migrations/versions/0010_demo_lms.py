"""The demo LMS's own tables: links placed in its course, its gradebook columns and the scores it received

Revision ID: 0010_demo_lms
Revises: 0008_gradebook_columns
Create Date: 2026-11-28 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010_demo_lms"
down_revision = "0008_gradebook_columns"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "demo_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("score_maximum", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("resource_id", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_line_items")),
    )
    op.create_table(
        "demo_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_link_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("line_item_id", sa.Integer(), nullable=True),
        sa.Column("response_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_item_id"],
            ["demo_line_items.id"],
            name=op.f("fk_demo_links_line_item_id_demo_line_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_links")),
        sa.UniqueConstraint("resource_link_id", name=op.f("uq_demo_links_resource_link_id")),
    )
    op.create_index(op.f("ix_demo_links_response_id"), "demo_links", ["response_id"], unique=False)
    op.create_table(
        "demo_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("score_given", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("score_maximum", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("activity_progress", sa.String(length=30), nullable=False),
        sa.Column("grading_progress", sa.String(length=30), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_item_id"],
            ["demo_line_items.id"],
            name=op.f("fk_demo_scores_line_item_id_demo_line_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demo_scores")),
        sa.UniqueConstraint("line_item_id", "user_id", name=op.f("uq_demo_scores_line_item_id_user_id")),
    )


def downgrade():
    op.drop_table("demo_scores")
    op.drop_index(op.f("ix_demo_links_response_id"), table_name="demo_links")
    op.drop_table("demo_links")
    op.drop_table("demo_line_items")
