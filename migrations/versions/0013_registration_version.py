"""A version number for registrations, so each process can cache platforms and deployments

Revision ID: 0013_registration_version
Revises: 0012_console
Create Date: 2026-11-28 13:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013_registration_version'
down_revision = '0012_console'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table('registration_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_version'))
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade():
    op.drop_table('registration_version')
