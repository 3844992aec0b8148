"""Migration 0008: courses that already have the progress column keep it; existing workshops stay in hours."""
import sqlalchemy as sa
from flask_migrate import upgrade

from lti_tool.extensions import db
from lti_tool.models import Base


def test_existing_progress_columns_and_workshops_survive_the_upgrade(app):
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                Base.metadata.drop_all(conn)
        upgrade(revision="0005_registration_invitations")
        with db.engine.begin() as conn:
            platform = conn.execute(sa.text(
                "INSERT INTO platforms (name, issuer, client_id, auth_login_url, auth_token_url, "
                "accept_new_deployments, registered_by, created_at) VALUES ('Moodle', 'https://moodle.example', "
                "'c1', 'https://moodle.example/auth', 'https://moodle.example/token', false, 'admin', "
                "CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
            deployment = conn.execute(sa.text(
                "INSERT INTO deployments (platform_id, deployment_id, created_at) VALUES (:p, '1', "
                "CURRENT_TIMESTAMP) RETURNING id"), {"p": platform}).scalar_one()
            courses = [conn.execute(sa.text(
                "INSERT INTO courses (platform_id, deployment_id, context_id, created_at) VALUES (:p, :d, :c, "
                "CURRENT_TIMESTAMP) RETURNING id"), {"p": platform, "d": deployment, "c": c}).scalar_one()
                for c in ("with-column", "without-column")]
            conn.execute(sa.text(
                "INSERT INTO line_items (platform_id, course_id, url, label, score_maximum, tag, created_at) "
                "VALUES (:p, :c, 'https://moodle.example/li/1', 'Bargaining Certificate progress', 24, "
                "'bargaining-certificate-progress', CURRENT_TIMESTAMP)"), {"p": platform, "c": courses[0]})
            conn.execute(sa.text(
                "INSERT INTO workshops (public_id, course_id, module_slug, event_name, created_at) VALUES "
                "('w-1', :c, 'power-mapping', 'Summer Conference', CURRENT_TIMESTAMP)"), {"c": courses[1]})
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT course_id FROM progress_columns")).scalars().all() == [courses[0]]
            assert conn.execute(sa.text("SELECT gradebook_column FROM workshops")).scalar_one() == "hours"
