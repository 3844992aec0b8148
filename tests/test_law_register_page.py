"""The legal register page: program admins see every entry with its source and review date; nobody else does."""
import re
from datetime import date

from lti_tool.catalog import load_catalog
from tests.test_legal_register import CONTENT


def text(response):
    return response.get_data(as_text=True)


def test_a_member_and_an_lms_admin_without_program_access_get_403(app, client, platform, do_launch, member_launch):
    member_home = member_launch(platform)
    refused = client.get(member_home + "admin/law-register/")
    assert refused.status_code == 403 and "This page is for admins" in text(refused)
    browser = app.test_client()
    admin_home = do_launch(platform, "admin", browser=browser).location
    not_granted = browser.get(admin_home + "admin/law-register/")
    assert not_granted.status_code == 403 and "admins grant" in text(not_granted)


def test_a_program_admin_sees_every_entry_with_source_review_date_and_use(app, platform, do_launch, member_launch):
    member_launch(platform)
    browser = app.test_client()
    admin_home = do_launch(platform, "admin", browser=browser).location
    assert app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer,
                                              "--sub", "user-admin-1"]).exit_code == 0
    people = text(browser.get(admin_home + "admin/"))
    assert re.search(r'href="[^"]+/admin/law-register/">Legal register</a>', people)
    page = text(browser.get(admin_home + "admin/law-register/"))
    register = load_catalog(CONTENT).register
    assert f"{len(register.entries)} entries" in page
    for entry in register.entries:
        row = re.search(rf'<tr id="law-{entry.id}">(.*?)</tr>', page, re.S).group(1)
        assert f'href="{entry.source}"' in row and f"{entry.reviewed_on.isoformat()} by {entry.reviewed_by}" in row
    strike = re.search(r'<tr id="law-c150e-9a-strike-ban">(.*?)</tr>', page, re.S).group(1)
    assert "Bargaining Foundations: The law: chapter 150E and the duty to bargain" in strike
    assert "Power Mapping" in strike  # through the strike-ban card that section includes


def test_an_entry_past_its_review_interval_is_marked_due(app, tmp_path, platform, do_launch, member_launch):
    import shutil

    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    register = content / "legal-register.yaml"
    register.write_text(register.read_text().replace(
        '  - id: c150e-9a-strike-ban', '  - id: c150e-9a-strike-ban', 1).replace(
        'Section9A\n    reviewed: {on: 2026-11-28', 'Section9A\n    reviewed: {on: 2020-01-15', 1))
    app.extensions["catalog"] = load_catalog(content)
    member_launch(platform)
    browser = app.test_client()
    admin_home = do_launch(platform, "admin", browser=browser).location
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer, "--sub", "user-admin-1"])
    page = text(browser.get(admin_home + "admin/law-register/"))
    assert "1 due for review" in page
    row = re.search(r'<tr id="law-c150e-9a-strike-ban">(.*?)</tr>', page, re.S).group(1)
    assert "2020-01-15 by Curriculum team" in row and "Due for review" in row
    assert date(2020, 1, 15) < date.today()
