"""Command-line tools for admins: thin commands over the services; each commits once."""
import json

import click
from flask import Flask
from flask.cli import AppGroup

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.services import invitations, people, platforms
from lti_tool.transaction import command_transaction

platform_cli = AppGroup("platform", help="Register the LMS platforms the tool trusts.")
deployment_cli = AppGroup("deployment", help="Add deployments to a registered platform.")
keys_cli = AppGroup("keys", help="The tool's signing keys.")


@platform_cli.command("add")
@click.option("--name", required=True, help="A label for admins, e.g. 'District Canvas'.")
@click.option("--issuer", required=True, help="The platform's issuer (iss).")
@click.option("--client-id", required=True, help="The client id the platform gave the tool.")
@click.option("--auth-login-url", required=True, help="The platform's OIDC authorization endpoint.")
@click.option("--auth-token-url", required=True, help="The platform's OAuth2 token endpoint.")
@click.option("--key-set-url", help="The platform's JWKS URL.")
@click.option("--key-set-file", type=click.File(), help="A JWKS file, when the platform has no key set URL.")
@click.option("--auth-audience", help="The token endpoint's audience, when it is not the token URL.")
@click.option("--deployment-id", "deployment_ids", multiple=True, help="A deployment id (repeat for several).")
def platform_add(name, issuer, client_id, auth_login_url, auth_token_url, key_set_url, key_set_file,
                 auth_audience, deployment_ids):
    """Register a platform."""
    with command_transaction():
        data = {"name": name, "issuer": issuer, "client_id": client_id, "auth_login_url": auth_login_url,
                "auth_token_url": auth_token_url, "key_set_url": key_set_url, "auth_audience": auth_audience,
                "deployment_ids": list(deployment_ids)}
        if key_set_file:
            try:
                data["key_set"] = json.load(key_set_file)
            except ValueError as exc:
                raise click.ClickException(f"--key-set-file is not JSON: {exc}") from exc
        try:
            platform = platforms.add_platform({k: v for k, v in data.items() if v is not None})
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
        keys.ensure_active_key()
    click.echo(f"Registered platform {platform.id}: {platform.name} ({platform.issuer}, client id "
               f"{platform.client_id}) with {len(platform.deployments)} deployment(s).")


@platform_cli.command("list")
def platform_list():
    """List the registered platforms and their deployments."""
    rows = platforms.all_platforms()
    if not rows:
        click.echo("No platforms are registered. Add one with `flask --app lti_tool platform add` or "
                   "LTI Dynamic Registration.")
    for p in rows:
        deployments = ", ".join(d.deployment_id for d in p.deployments) or "none yet"
        # Registrations of one LMS share its members and courses: say so, so a duplicate is visible.
        same_lms = [str(o.id) for o in rows if o.lms_id == p.lms_id and o.id != p.id]
        shared = f" (the same LMS as registration {', '.join(same_lms)})" if same_lms else ""
        click.echo(f"{p.id}\t{p.name}{shared}\n\tissuer: {p.issuer}\n\tclient id: {p.client_id}\n"
                   f"\tlogin: {p.auth_login_url}\n\ttoken: {p.auth_token_url}\n"
                   f"\tkey set: {p.key_set_url or 'stored'}\n\tdeployments: {deployments}"
                   f"{' (new ones accepted)' if p.accept_new_deployments else ''}\n"
                   f"\tregistered: {p.registered_by}, {p.created_at:%Y-%m-%d}")


@platform_cli.command("remove")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.confirmation_option(prompt="Remove this registration and its launches? With the LMS's last registration, "
                                  "its courses and accounts go too.")
def platform_remove(issuer, client_id):
    """Remove a registration; with an LMS's last one, what was recorded in that LMS."""
    with command_transaction():
        try:
            platform = platforms.remove_platform(issuer, client_id)
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Removed platform {platform.name} ({issuer}, client id {client_id}).")


@deployment_cli.command("add")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
def deployment_add(issuer, client_id, deployment_id):
    """Add a deployment id to a platform."""
    with command_transaction():
        try:
            platforms.add_deployment(issuer, client_id, deployment_id)
        except platforms.PlatformError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Added deployment {deployment_id} to {issuer} (client id {client_id}).")


@platform_cli.command("disable")
@click.option("--id", "platform_id", type=int, required=True, help="The registration's number (platform list).")
@click.option("--reason", required=True, help="Why (LMS admins see it when their launch is refused).")
def platform_disable(platform_id, reason):
    """Refuse every login and launch through a registration (its members and hours stay)."""
    try:
        platform = platforms.disable_platform(platform_id, reason=reason, actor_account_id=None)
    except platforms.PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Registration {platform.id} ({platform.name}) is disabled: its launches are refused.")


@platform_cli.command("enable")
@click.option("--id", "platform_id", type=int, required=True, help="The registration's number (platform list).")
def platform_enable(platform_id):
    """Accept logins and launches through a disabled registration again."""
    try:
        platform = platforms.enable_platform(platform_id, actor_account_id=None)
    except platforms.PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Registration {platform.id} ({platform.name}) is enabled.")


@platform_cli.command("check")
@click.option("--id", "platform_id", type=int, required=True, help="The registration's number (platform list).")
def platform_check(platform_id):
    """Fetch a platform's key set and OpenID configuration, ask it for a token, and say what is wrong."""
    try:
        platform, result = platforms.check(platform_id, actor_account_id=None, via="cli")
    except platforms.PlatformError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    for finding in result.findings:
        click.echo(f"[{finding.level}] {finding.topic}: {finding.words}")
    if result.problems:
        raise click.ClickException(f"{len(result.problems)} problem(s) found with registration {platform.id}.")
    click.echo(f"No problems found with registration {platform.id} ({platform.name}).")


launches_cli = AppGroup("launches", help="The launch log (launches and refused launches).")


@launches_cli.command("purge")
@click.option("--days", type=int, default=None, help="Keep this many days (default: LAUNCH_LOG_DAYS).")
def launches_purge(days):
    """Delete launches and refused launches older than the launch log keeps."""
    from flask import current_app

    from lti_tool.services import launch_log

    days = days if days is not None else current_app.config["LAUNCH_LOG_DAYS"]
    try:
        refused, launched = launch_log.purge(days)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Deleted {refused} refused-launch row(s) and {launched} launch(es) older than {days} days.")


@keys_cli.command("rotate")
def keys_rotate():
    """Make a new active signing key; the previous key stays published."""
    from lti_tool.services import tool_keys

    with command_transaction():
        key = tool_keys.rotate(actor_account_id=None, via="cli")
    click.echo(f"New active key {key.kid}. The JWKS publishes it and the previous key.")


@keys_cli.command("ensure")
def keys_ensure():
    """Make the first signing key if the tool has none (safe to run at every start)."""
    with command_transaction():
        key = keys.ensure_active_key()
    click.echo(f"Active key {key.kid}.")


@keys_cli.command("list")
def keys_list():
    """List the published keys."""
    for jwk in keys.public_jwks()["keys"]:
        click.echo(jwk["kid"])


content_cli = AppGroup("content", help="The program rules and modules under content/.")


# No app context: the app refuses to start on broken content, and this command is how an editor finds out why.
@content_cli.command("check", with_appcontext=False)
@click.option("--content-dir", type=click.Path(exists=True, file_okay=False),
              help="Default: LTI_CONTENT_DIR, or content/ of this repository.")
@click.option("--strict-reading", is_flag=True, help="Also fail when a section reads above program.yaml's grade.")
def content_check(content_dir, strict_reading):
    """Validate content/: schemas, the legal register and its references, cited law, and reading grades."""
    from lti_tool.config import load_settings
    from lti_tool.content_check import check_content

    report = check_content(content_dir or load_settings("instance")["CONTENT_DIR"])
    if not report.ok or report.catalog is None:  # no catalog only when it could not be loaded (a problem)
        for problem in report.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{len(report.problems)} problem(s) in the content; each is named above with "
                                   "its file and line.")
    catalog = report.catalog
    for group in catalog.program.groups:
        modules = catalog.modules_in(group.id)
        click.echo(f"{group.title}: {len(modules)} module(s), {group.required_hours:g} hours required; counts "
                   f"{', '.join(group.counts)}")
        for module in modules:
            click.echo(f"  {module.slug}: {module.credit_hours:g} h, {len(module.sections)} sections, "
                       f"{len(module.activities)} activities, {len(module.knowledge_check.questions)} questions, "
                       f"version {module.content_version}")
    limit = catalog.program.reading_grade_max
    above = [r for r in report.readability if r.above]
    click.echo(f"Reading grade (Flesch-Kincaid) per section; program.yaml sets at most {limit:g}:")
    for r in report.readability:
        click.echo(f"  {r.file}: grade {r.grade:.1f}{f'  ABOVE {limit:g}' if r.above else ''}")
    click.echo(f"Legal register: {len(catalog.register.entries)} entries, {len(catalog.cards)} card(s).")
    if report.unused:
        click.echo("Register entries no module uses: " + ", ".join(report.unused))
    if above:
        message = f"{len(above)} section(s) read above grade {limit:g}: " + ", ".join(r.file for r in above)
        if strict_reading:
            raise click.ClickException(message)
        click.echo(message)
    click.echo(f"Content is valid: {len(catalog.modules)} modules.")


admins_cli = AppGroup("admins", help="Who may use the program-wide admin pages.")


@admins_cli.command("grant")
@click.option("--person-id", type=int, help="The person's number (see the admin pages, or --email's list).")
@click.option("--platform", "platform_ref", help="With --sub: the LMS, by its number or issuer (`platform list`).")
@click.option("--sub", help="With --platform: the user's id in that LMS (the LTI `sub`).")
@click.option("--email", help="List the people whose LMS accounts carry this email, and choose one.")
def admins_grant(person_id, platform_ref, sub, email):
    """Let a person use the program admin pages (they also need an admin role in their LMS).

    Identify them by person number or by LMS identity. An email alone is never trusted: members type their
    email on the registration form, so --email only lists the candidates with the accounts their LMSs vouch for.
    """
    import sys

    with command_transaction():
        given = sum(bool(x) for x in (person_id, platform_ref or sub, email))
        if given != 1:
            raise click.ClickException("Give one of --person-id N, --platform P --sub S, or --email X.")
        try:
            if person_id:
                person = people.grant_program_admin(person_id, how=f"person id {person_id}")
            elif platform_ref or sub:
                account = people.account_by_lms_identity(platform_ref, sub)
                if account.person_id is None:
                    raise people.PeopleError("That account has no person yet: ask them to open the tool once.")
                person = people.grant_program_admin(account.person_id,
                                                    how=f"LMS {account.lms_id} sub {account.sub}")
            else:
                person = _grant_by_email(email, interactive=sys.stdin.isatty())
        except people.PeopleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Person {person.id} ({person.name}) is now a program admin. Their LMS accounts:")
    for line in people.describe_accounts(person):
        click.echo(f"  {line}")


def _grant_by_email(email: str, *, interactive: bool):
    """List the people whose LMS accounts carry the email, and grant the one the operator picks."""
    candidates = people.people_with_lms_email(email)
    typed_only = people.people_with_typed_email_only(email)
    lines = []
    for person in candidates:
        lines.append(f"person {person.id}: {person.name}")
        lines.extend(f"    {line}" for line in people.describe_accounts(person))
    note = ""
    if typed_only:
        note = (f"\n{len(typed_only)} other person(s) typed this address on the registration form only; a typed "
                "address proves nothing, so they are not offered (check with the LMS and use --platform/--sub).")
    if not candidates:
        raise people.PeopleError(f"No LMS account carries the email {email}: the person must have launched the "
                                 f"tool once, or grant by --platform and --sub.{note}")
    listing = "People whose LMS accounts carry " + email + ":\n" + "\n".join(lines) + note
    if not interactive:
        raise people.PeopleError(listing + "\nCheck which one is meant, then run again with --person-id N (or "
                                           "--platform and --sub).")
    click.echo(listing)
    choice = click.prompt("Grant program-admin access to person number (blank to cancel)", default="",
                          show_default=False).strip()
    if not choice:
        raise people.PeopleError("Cancelled: nobody was granted access.")
    if not choice.isdigit() or int(choice) not in {p.id for p in candidates}:
        raise people.PeopleError(f"{choice} is not one of the people listed: nobody was granted access.")
    return people.grant_program_admin(int(choice), how=f"email {email}, chosen from the list")


@admins_cli.command("list")
def admins_list():
    """List the program admins."""
    import sqlalchemy as sa

    from lti_tool.models import Person

    for person in db.session.scalars(sa.select(Person).where(Person.program_admin.is_(True))):
        click.echo(f"{person.id}\t{person.name}\t{person.email}")
        for line in people.describe_accounts(person):  # who the LMSs say this is, not what was typed
            click.echo(f"\t{line}")


certificates_cli = AppGroup("certificates", help="Certificates.")


@certificates_cli.command("evaluate")
def certificates_evaluate():
    """Issue the certificates whose rules are met but not yet issued (after a migration merged people)."""
    from lti_tool.services import certificates

    with command_transaction():
        issued = certificates.evaluate_uncertified()
    for certificate in issued:
        click.echo(f"Issued {certificate.number} to person {certificate.person_id} ({certificate.holder_name}).")
    click.echo(f"{len(issued)} certificate(s) issued.")


registration_cli = AppGroup("registration", help="One-time Dynamic Registration invitations, one per institution.")


@registration_cli.command("create")
@click.option("--name", required=True, help="The institution the link is for, e.g. 'Springfield University'.")
@click.option("--expires-in", default="7d", show_default=True, help="How long the link works: 30m, 12h, 7d, 2w.")
def registration_create(name, expires_in):
    """Make a one-time Dynamic Registration link and print it (it is shown only this once)."""
    from flask import current_app

    with command_transaction():
        try:
            made = invitations.create(name, current_app.config["PUBLIC_BASE_URL"],
                                      invitations.parse_lifetime(expires_in))
        except invitations.InvitationError as exc:
            raise click.ClickException(exc.message) from exc
    invitation = made.invitation
    click.echo(f"Invitation {invitation.id} for {invitation.name}, valid until "
               f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC, registers once:\n\n  {made.url}\n\n"
               "Give this link to the institution's LMS admin (Moodle: Tool URL, then Add LTI Advantage; Canvas: "
               "+ LTI Registration). It is not stored and cannot be shown again.")


@registration_cli.command("list")
def registration_list():
    """List the invitations: open, used (and what they registered), expired or revoked."""
    rows = invitations.all_invitations()
    if not rows:
        click.echo("No invitations. Make one with `flask --app lti_tool registration create --name ...`.")
    for invitation in rows:
        state = invitations.status(invitation)
        line = (f"{invitation.id}\t{state}\t{invitation.name}\tmade {invitation.created_at:%Y-%m-%d}, "
                f"expires {invitation.expires_at:%Y-%m-%d %H:%M} UTC")
        if state == "used":
            if invitation.platform is not None:
                line += (f"\n\tused {invitation.used_at:%Y-%m-%d %H:%M}: {invitation.outcome} "
                         f"{invitation.platform.name}"
                         f" ({invitation.platform.issuer}, client id {invitation.platform.client_id})")
            else:
                line += f"\n\tused {invitation.used_at:%Y-%m-%d %H:%M}, registration in progress or interrupted"
        click.echo(line)


@registration_cli.command("revoke")
@click.option("--id", "invitation_id", type=int, required=True, help="The invitation's number (see list).")
def registration_revoke(invitation_id):
    """Withdraw an unused invitation."""
    with command_transaction():
        try:
            invitation = invitations.revoke(invitation_id)
        except invitations.InvitationError as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(f"Invitation {invitation.id} ({invitation.name}) is revoked: its link no longer works.")


maintenance_cli = AppGroup("maintenance", help="Housekeeping (the grade worker also does it, hourly).")


@maintenance_cli.command("purge")
def maintenance_purge():
    """Delete login records past their retention (a day): they are kept only to refuse a replayed login."""
    from lti_tool.lti.login import purge_login_states

    with command_transaction():
        removed = purge_login_states()
    click.echo(f"Removed {removed} expired login record(s).")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    from lti_tool.cli_database import database_cli
    from lti_tool.cli_grades import grades_cli
    from lti_tool.cli_worker import mail_cli, worker_cli, workshops_cli

    for group in (platform_cli, deployment_cli, keys_cli, content_cli, admins_cli, registration_cli, grades_cli,
                  database_cli, certificates_cli, launches_cli, worker_cli, mail_cli, workshops_cli, maintenance_cli):
        app.cli.add_command(group)
