"""Accounts and courses belong to the LMS, not to one registration of it

Revision ID: 0007_lms_identity
Revises: 0005_registration_invitations
Create Date: 2026-11-28 12:00:00

An LMS is its issuer, or issuer + client id where the issuer is shared between customers (Canvas cloud). Existing
registrations get their LMS; courses recorded twice (one per registration of the same LMS) become one, and accounts
of the same LMS user become one: the later account stays (its ledger entries are never rewritten) but is marked
merged into the earlier one, under the same person, and the two people are merged with a recorded audit event.
After upgrading, run `flask --app lti_tool certificates evaluate`: people whose hours together now meet the rules
get their certificate (a migration cannot run the program's rules).
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007_lms_identity"
down_revision = "0005_registration_invitations"
branch_labels = None
depends_on = None

#: Canvas cloud's issuers, shared by every customer (as lti/canvas.py had them when this migration was written).
SHARED_ISSUERS = (
    "https://canvas.instructure.com",
    "https://canvas.beta.instructure.com",
    "https://canvas.test.instructure.com",
)
MERGE_REASON = (
    "The same LMS user had an account through two registrations of one LMS; accounts became one per "
    "LMS (migration 0007_lms_identity)."
)


def _lms_key(issuer: str, client_id: str) -> tuple[str, str]:
    issuer = issuer.rstrip("/")
    return issuer, client_id if issuer in SHARED_ISSUERS else ""


def upgrade():
    op.create_table(
        "lms_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_identities")),
        sa.UniqueConstraint("issuer", "client_id", name=op.f("uq_lms_identities_issuer_client_id")),
    )
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lms_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lms_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lms_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))

    conn = op.get_bind()
    _give_platforms_their_lms(conn)
    conn.execute(
        sa.text("UPDATE courses SET lms_id = (SELECT lms_id FROM platforms WHERE platforms.id = courses.platform_id)")
    )
    conn.execute(
        sa.text("UPDATE accounts SET lms_id = (SELECT lms_id FROM platforms WHERE platforms.id = accounts.platform_id)")
    )
    for keep, other in _duplicates(conn, "SELECT id, lms_id, context_id FROM courses ORDER BY id"):
        _merge_course(conn, keep, other)
    for keep, other in _duplicates(conn, "SELECT id, lms_id, sub FROM accounts ORDER BY id"):
        _merge_account(conn, keep, other)

    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.alter_column("lms_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_platforms_lms_id"), ["lms_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_platforms_lms_id_lms_identities"), "lms_identities", ["lms_id"], ["id"], ondelete="RESTRICT"
        )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_courses_platform_id_deployment_id_context_id", type_="unique")
        batch_op.drop_constraint("fk_courses_platform_id_platforms", type_="foreignkey")
        batch_op.drop_constraint("fk_courses_deployment_id_deployments", type_="foreignkey")
        batch_op.drop_column("platform_id")
        batch_op.drop_column("deployment_id")
        batch_op.alter_column("lms_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_courses_lms_id_lms_identities"), "lms_identities", ["lms_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(batch_op.f("uq_courses_lms_id_context_id"), ["lms_id", "context_id"])
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_accounts_platform_id_sub", type_="unique")
        batch_op.drop_constraint("fk_accounts_platform_id_platforms", type_="foreignkey")
        batch_op.drop_column("platform_id")
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_lms_id_lms_identities"), "lms_identities", ["lms_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_merged_into_id_accounts"),
            "accounts",
            ["merged_into_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_index(batch_op.f("ix_accounts_merged_into_id"), ["merged_into_id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_accounts_lms_id_sub"), ["lms_id", "sub"])
        batch_op.create_check_constraint(
            batch_op.f("ck_accounts_in_lms_or_merged"), "(lms_id IS NULL) <> (merged_into_id IS NULL)"
        )


def _give_platforms_their_lms(conn) -> None:
    known: dict[tuple[str, str], int] = {}
    lms = sa.table(
        "lms_identities",
        sa.column("id"),
        sa.column("issuer"),
        sa.column("client_id"),
        sa.column("name"),
        sa.column("created_at"),
    )
    for row in conn.execute(sa.text("SELECT id, issuer, client_id, name, created_at FROM platforms ORDER BY id")):
        key = _lms_key(row.issuer, row.client_id)
        if key not in known:
            known[key] = conn.execute(
                lms.insert()
                .values(
                    issuer=key[0], client_id=key[1], name=row.name[:200], created_at=row.created_at or datetime.now(UTC)
                )
                .returning(lms.c.id)
            ).scalar_one()
        conn.execute(sa.text("UPDATE platforms SET lms_id = :lms WHERE id = :id"), {"lms": known[key], "id": row.id})


def _duplicates(conn, query: str):
    """Yield (first, later) id pairs of rows with the same LMS and key (the first one recorded stays)."""
    first: dict[tuple, int] = {}
    for row_id, lms_id, key in conn.execute(sa.text(query)).all():
        if (lms_id, key) in first:
            yield first[(lms_id, key)], row_id
        else:
            first[(lms_id, key)] = row_id


def _run(conn, statement: str, **params) -> None:
    conn.execute(sa.text(statement), params)


def _merge_course(conn, keep: int, other: int) -> None:
    """Move everything of course `other` to `keep` (the same LMS course seen through two registrations)."""
    _run(
        conn,
        "DELETE FROM enrolments WHERE course_id = :other AND account_id IN "
        "(SELECT account_id FROM enrolments WHERE course_id = :keep)",
        keep=keep,
        other=other,
    )
    _run(conn, "UPDATE enrolments SET course_id = :keep WHERE course_id = :other", keep=keep, other=other)
    links = conn.execute(
        sa.text(
            "SELECT o.id AS other_link, k.id AS keep_link FROM resource_links o JOIN resource_links k "
            "ON k.course_id = :keep AND k.resource_link_id = o.resource_link_id WHERE o.course_id = :other"
        ),
        {"keep": keep, "other": other},
    ).all()
    for other_link, keep_link in links:
        for table in ("launches", "workshops"):
            _run(
                conn,
                f"UPDATE {table} SET resource_link_id = :keep WHERE resource_link_id = :other",
                keep=keep_link,
                other=other_link,
            )
        _run(conn, "DELETE FROM resource_links WHERE id = :other", other=other_link)
    for table in ("resource_links", "launches", "workshops", "module_completions", "line_items", "outbox_scores"):
        _run(conn, f"UPDATE {table} SET course_id = :keep WHERE course_id = :other", keep=keep, other=other)
    _run(conn, "DELETE FROM courses WHERE id = :other", other=other)


def _merge_account(conn, keep: int, other: int) -> None:
    """Make account `other` (the same LMS user as `keep`) stand behind `keep`, under keep's person.

    Its ledger entries stay as they are, naming `other`, which stays (merged into `keep`); what a launch shows
    (enrolments, module progress, workshop records, launches) moves to `keep` wherever keep has none of its own.
    """
    keep_person, other_person = conn.execute(
        sa.text(
            "SELECT (SELECT person_id FROM accounts WHERE id = :keep), (SELECT person_id FROM accounts WHERE id = "
            ":other)"
        ),
        {"keep": keep, "other": other},
    ).one()
    if keep_person is None:
        _run(conn, "UPDATE accounts SET person_id = :person WHERE id = :keep", person=other_person, keep=keep)
    elif other_person is not None and other_person != keep_person:
        _merge_people(conn, keep_person, other_person, [keep, other])
    _run(conn, "UPDATE accounts SET lms_id = NULL, merged_into_id = :keep WHERE id = :other", keep=keep, other=other)
    _run(
        conn,
        "DELETE FROM enrolments WHERE account_id = :other AND course_id IN "
        "(SELECT course_id FROM enrolments WHERE account_id = :keep)",
        keep=keep,
        other=other,
    )
    for table, key in (
        ("enrolments", None),
        ("launches", None),
        ("quiz_attempts", None),
        ("link_codes", None),
        ("section_visits", "module_slug = t.module_slug AND mine.section_slug = t.section_slug"),
        ("activity_answers", "module_slug = t.module_slug AND mine.activity_slug = t.activity_slug"),
        ("module_completions", "module_slug = t.module_slug"),
        ("workshop_records", "workshop_id = t.workshop_id"),
    ):
        unless = (
            f" AND NOT EXISTS (SELECT 1 FROM {table} mine WHERE mine.account_id = :keep AND mine.{key})" if key else ""
        )
        _run(
            conn,
            f"UPDATE {table} SET account_id = :keep WHERE id IN (SELECT t.id FROM {table} t WHERE "
            f"t.account_id = :other{unless})",
            keep=keep,
            other=other,
        )


def _merge_people(conn, keep: int, other: int, accounts: list[int]) -> None:
    certified = conn.execute(
        sa.text("SELECT person_id, number FROM certificates WHERE person_id IN (:keep, :other)"),
        {"keep": keep, "other": other},
    ).all()
    now = datetime.now(UTC)
    audit = sa.table(
        "audit_events",
        sa.column("action"),
        sa.column("person_id"),
        sa.column("reason"),
        sa.column("details", sa.JSON),
        sa.column("created_at"),
    )
    if len(certified) == 2:
        # Two certificates: an admin must revoke one first (as the admin merge asks); the accounts still become
        # one, and the other person keeps the merged account and its hours until then.
        conn.execute(
            audit.insert().values(
                action="people.merge_needed",
                person_id=keep,
                created_at=now,
                reason=MERGE_REASON + " Both people hold a certificate: revoke one, then merge them.",
                details={
                    "merged_person_id": other,
                    "accounts": accounts,
                    "certificates": sorted(number for _, number in certified),
                },
            )
        )
        return
    _run(conn, "UPDATE accounts SET person_id = :keep WHERE person_id = :other", keep=keep, other=other)
    _run(
        conn,
        "DELETE FROM registrations WHERE person_id = :other AND EXISTS "
        "(SELECT 1 FROM registrations r WHERE r.person_id = :keep)",
        keep=keep,
        other=other,
    )
    _run(conn, "UPDATE registrations SET person_id = :keep WHERE person_id = :other", keep=keep, other=other)
    _run(conn, "UPDATE certificates SET person_id = :keep WHERE person_id = :other", keep=keep, other=other)
    conn.execute(
        sa.text(
            "UPDATE people SET program_admin = (SELECT MAX(CASE WHEN program_admin THEN 1 ELSE 0 END) "
            "FROM people WHERE id IN (:keep, :other)) = 1 WHERE id = :keep"
        ),
        {"keep": keep, "other": other},
    )
    # The merged person's history stays with the person it became (the admin merge leaves it pointing nowhere).
    _run(conn, "UPDATE audit_events SET person_id = :keep WHERE person_id = :other", keep=keep, other=other)
    _run(conn, "DELETE FROM people WHERE id = :other", other=other)
    conn.execute(
        audit.insert().values(
            action="people.merge",
            person_id=keep,
            reason=MERGE_REASON,
            created_at=now,
            details={"merged_person_id": other, "accounts": accounts},
        )
    )


def downgrade():
    # Accounts and courses go back to one registration each: the LMS's first. Merged accounts keep their person
    # (merges are not undone; an admin can split an account off).
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deployment_id", sa.Integer(), nullable=True))
    conn = op.get_bind()
    first = "(SELECT MIN(p.id) FROM platforms p WHERE p.lms_id = {}.lms_id)"
    conn.execute(sa.text(f"UPDATE accounts SET platform_id = {first.format('accounts')} WHERE lms_id IS NOT NULL"))
    conn.execute(
        sa.text(
            "UPDATE accounts SET platform_id = (SELECT MIN(p.id) FROM platforms p JOIN accounts k ON "
            "k.lms_id = p.lms_id WHERE k.id = accounts.merged_into_id) WHERE lms_id IS NULL"
        )
    )
    conn.execute(sa.text(f"UPDATE courses SET platform_id = {first.format('courses')}"))
    conn.execute(
        sa.text(
            "UPDATE courses SET deployment_id = (SELECT MIN(d.id) FROM deployments d WHERE "
            "d.platform_id = courses.platform_id)"
        )
    )
    # A merged account would collide with its survivor on (platform, sub): mark its sub as merged.
    conn.execute(
        sa.text(
            "UPDATE accounts SET sub = 'merged-' || CAST(id AS VARCHAR(20)) || '-' || sub "
            "WHERE merged_into_id IS NOT NULL"
        )
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_accounts_in_lms_or_merged"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_accounts_lms_id_sub"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_accounts_merged_into_id"))
        batch_op.drop_constraint(batch_op.f("fk_accounts_merged_into_id_accounts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_accounts_lms_id_lms_identities"), type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("lms_id")
        batch_op.alter_column("platform_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            "fk_accounts_platform_id_platforms", "platforms", ["platform_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint("uq_accounts_platform_id_sub", ["platform_id", "sub"])
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_courses_lms_id_context_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_courses_lms_id_lms_identities"), type_="foreignkey")
        batch_op.drop_column("lms_id")
        batch_op.alter_column("platform_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("deployment_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            "fk_courses_platform_id_platforms", "platforms", ["platform_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            "fk_courses_deployment_id_deployments", "deployments", ["deployment_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(
            "uq_courses_platform_id_deployment_id_context_id", ["platform_id", "deployment_id", "context_id"]
        )
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_platforms_lms_id_lms_identities"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_platforms_lms_id"))
        batch_op.drop_column("lms_id")
    op.drop_table("lms_identities")
