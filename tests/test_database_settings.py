"""Database connection settings an operator sets through the environment."""
import pytest

from lti_tool import create_app
from lti_tool.extensions import db


def _engine_pre_ping(tmp_path) -> bool:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'settings.sqlite3'}",
                      "SECRET_KEY": "test-secret", "GRADES_BACKGROUND_SYNC": False})
    with app.app_context():
        try:
            return db.engine.pool._pre_ping
        finally:
            db.engine.dispose()


def test_connections_are_checked_before_use_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("LTI_DATABASE_PRE_PING", raising=False)
    assert _engine_pre_ping(tmp_path) is True


@pytest.mark.parametrize("value, expected", [("0", False), ("1", True)])
def test_the_check_before_use_can_be_turned_off(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("LTI_DATABASE_PRE_PING", value)
    assert _engine_pre_ping(tmp_path) is expected
