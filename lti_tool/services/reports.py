"""Program reports for the staff: who registered and how far they are, hours by module and kind of credit,
certificates by month, members one requirement away, workshops held. Each is a table of rows (exported as CSV
through services.exports.as_csv) and some have a chart, drawn on the server as SVG by pygal."""
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.catalog import Catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Certificate, Course, LedgerEntry, Person, Registration, Workshop, WorkshopRecord
from lti_tool.services.ledger import with_kind_of_credit
from lti_tool.services.people import JOB_CATEGORIES, SECTORS
from lti_tool.services.rules import Progress, compute_progress, format_hours

CREDIT_KIND_LABELS = {"module_completion": "Self-paced module completed", "workshop_grade": "Graded workshop",
                      "admin_adjustment": "Adjustment by program staff"}


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    #: One sentence on what the table shows and how it is counted.
    about: str
    header: list[str]
    rows: list[list]
    #: (label column, value column) drawn as a bar chart, when a chart reads better than the table.
    chart: tuple[int, int] | None = None

    def csv_rows(self):
        """Yield the header and the rows, for services.exports.as_csv."""
        yield self.header
        yield from self.rows


REPORTS = {
    "by-local-association": "Registrations and progress by local association",
    "by-sector": "Registrations and progress by sector",
    "by-job-category": "Registrations and progress by job category",
    "hours-by-module": "Hours and completions by module",
    "hours-by-kind": "Hours by kind of credit",
    "certificates-by-month": "Certificates issued by month",
    "one-requirement-away": "Members within one requirement of the certificate",
    "workshops": "Workshops held",
}


def _ledger_by_person() -> dict[int | None, list[tuple[str, Decimal, str]]]:
    # One grouped query for the whole ledger: the database adds, Python applies the rules.
    query, kind = with_kind_of_credit(sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id))
    sums = db.session.execute(
        query.with_only_columns(Account.person_id, LedgerEntry.module_slug, kind, sa.func.sum(LedgerEntry.hours))
        .group_by(Account.person_id, LedgerEntry.module_slug, kind))
    by_person: dict[int | None, list[tuple[str, Decimal, str]]] = defaultdict(list)
    for person_id, slug, credit_kind, hours in sums:
        by_person[person_id].append((slug, Decimal(str(hours)), credit_kind))
    return by_person


def _progress(catalog: Catalog) -> dict[int, Progress]:
    ledger = _ledger_by_person()
    person_ids = set(db.session.scalars(sa.select(Registration.person_id))) | {p for p in ledger if p is not None}
    return {person_id: compute_progress(catalog, ledger.get(person_id, ())) for person_id in person_ids}


def _one_away(progress: Progress) -> bool:
    return not progress.met and len(progress.what_is_left) == 1


def _by_registration(catalog: Catalog, field: str, labels: dict[str, str] | None, slug: str) -> Report:
    progress = _progress(catalog)
    issued = set(db.session.scalars(sa.select(Certificate.person_id).where(Certificate.status == "issued")))
    groups: dict[str, list[int]] = defaultdict(list)
    for person_id, value in db.session.execute(sa.select(Registration.person_id, getattr(Registration, field))):
        name = labels.get(value, value) if labels else " ".join((value or "").split())
        groups[name or "(not given)"].append(person_id)
    rows = []
    for name in sorted(groups, key=lambda n: (-len(groups[n]), n.lower())):
        members = groups[name]
        hours = [progress[p].total_hours for p in members if p in progress]
        average = sum(hours, Decimal(0)) / len(members) if members else Decimal(0)
        rows.append([name, len(members), sum(1 for h in hours if h > 0),
                     sum(1 for p in members if p in progress and _one_away(progress[p])),
                     sum(1 for p in members if p in issued), format_hours(average)])
    label = {"local_association": "Local association", "sector": "Sector", "job_category": "Job category"}[field]
    return Report(slug, REPORTS[slug], "Each registered member once, by what they gave on the registration form; "
                  "hours are those that count toward the certificate.",
                  [label, "Registered", "With hours", "One requirement away", "Certificates in force",
                   "Average counted hours"], rows)


def _hours_by_module(catalog: Catalog) -> Report:
    query, kind = with_kind_of_credit(sa.select(LedgerEntry))
    hours: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for slug, credit_kind, total in db.session.execute(
            query.with_only_columns(LedgerEntry.module_slug, kind, sa.func.sum(LedgerEntry.hours))
            .group_by(LedgerEntry.module_slug, kind)):
        hours[slug][credit_kind] += Decimal(str(total))
    completions: dict[str, int] = defaultdict(int)
    for progress in _progress(catalog).values():
        for group in progress.groups:
            for slug in group.complete_modules:
                completions[slug] += 1
    rows = []
    modules = {m.slug: m for m in catalog.modules}
    for slug in sorted(set(modules) | set(hours), key=lambda s: modules[s].title if s in modules else s):
        module = modules.get(slug)
        kinds = hours.get(slug, {})
        rows.append([module.title if module else f"{slug} (no longer in the catalog)",
                     catalog.program.group(module.group).title if module else "",
                     format_hours(sum(kinds.values(), Decimal(0)))]
                    + [format_hours(kinds.get(k, Decimal(0))) for k in CREDIT_KIND_LABELS]
                    + [completions.get(slug, 0)])
    return Report("hours-by-module", REPORTS["hours-by-module"], "Net hours in the ledger (after reversals) for "
                  "each module, by kind of credit, and how many members earned the module in full.",
                  ["Module", "Requirement group", "Hours"] + list(CREDIT_KIND_LABELS.values()) + ["Members completed"],
                  rows, chart=(0, 2))


def _hours_by_kind() -> Report:
    query, kind = with_kind_of_credit(sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id))
    rows = []
    found = {k: (Decimal(str(h or 0)), n, p) for k, h, n, p in db.session.execute(
        query.with_only_columns(kind, sa.func.sum(LedgerEntry.hours), sa.func.count(LedgerEntry.id),
                                sa.func.count(sa.distinct(Account.person_id))).group_by(kind))}
    for key, label in CREDIT_KIND_LABELS.items():
        total, entries, people = found.get(key, (Decimal(0), 0, 0))
        rows.append([label, format_hours(total), entries, people])
    return Report("hours-by-kind", REPORTS["hours-by-kind"], "Net hours in the ledger by how they were earned; a "
                  "reversal counts against the kind of the entry it cancels.",
                  ["Kind of credit", "Hours", "Ledger entries", "Members"], rows)


def _certificates_by_month() -> Report:
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for issued_at, status in db.session.execute(sa.select(Certificate.issued_at, Certificate.status)):
        month = months[f"{issued_at:%Y-%m}"]
        month[0] += 1
        if status == "revoked":
            month[1] += 1
    rows = [[month, counts[0], counts[1]] for month, counts in sorted(months.items())]
    return Report("certificates-by-month", REPORTS["certificates-by-month"], "Certificates by the month they were "
                  "issued (UTC), with how many of them were later revoked.",
                  ["Month", "Certificates issued", "Since revoked"], rows, chart=(0, 1))


def _one_requirement_away(catalog: Catalog) -> Report:
    progress = _progress(catalog)
    near = {p: progress[p] for p in progress if _one_away(progress[p])}
    people = {p.id: p for p in db.session.scalars(sa.select(Person).where(Person.id.in_(near)))} if near else {}
    registrations = {r.person_id: r for r in db.session.scalars(
        sa.select(Registration).where(Registration.person_id.in_(near)))} if near else {}
    rows = []
    for person_id, p in sorted(near.items(), key=lambda item: -item[1].total_hours):
        person, registration = people.get(person_id), registrations.get(person_id)
        rows.append([person_id, registration.name if registration else (person.name if person else ""),
                     registration.email if registration else (person.email if person else ""),
                     registration.local_association if registration else "", format_hours(p.total_hours),
                     p.what_is_left[0]])
    return Report("one-requirement-away", REPORTS["one-requirement-away"], "Members who lack exactly one "
                  "requirement (hours in one group, an elective, or hours in all) for the certificate.",
                  ["Person", "Name", "Email", "Local association", "Counted hours", "Still needed"], rows)


def _workshops(catalog: Catalog) -> Report:
    attended = sa.func.count(WorkshopRecord.id).filter(WorkshopRecord.attended.is_(True))
    graded = sa.func.count(WorkshopRecord.id).filter(WorkshopRecord.ledger_entry_id.is_not(None))
    rows = []
    for workshop, title, label, came, passed in db.session.execute(
            sa.select(Workshop, Course.title, Course.label, attended, graded)
            .join(Course, Course.id == Workshop.course_id)
            .outerjoin(WorkshopRecord, WorkshopRecord.workshop_id == Workshop.id)
            .group_by(Workshop.id, Course.title, Course.label)
            .order_by(Workshop.session_date.desc(), Workshop.id.desc())):
        module = catalog.module(workshop.module_slug)
        rows.append([workshop.session_date.isoformat() if workshop.session_date else "",
                     module.title if module else workshop.module_slug, workshop.event_name, workshop.venue or "",
                     title or label or "", came, passed])
    return Report("workshops", REPORTS["workshops"], "Every workshop instructors placed, newest first, with how "
                  "many members attended and how many were graded with hours.",
                  ["Date", "Module", "Conference or training", "Venue", "Course", "Attended", "Graded with hours"],
                  rows)


def build(slug: str, catalog: Catalog) -> Report:
    """Build one report by its slug (KeyError for an unknown one)."""
    if slug == "by-local-association":
        return _by_registration(catalog, "local_association", None, slug)
    if slug == "by-sector":
        return _by_registration(catalog, "sector", SECTORS, slug)
    if slug == "by-job-category":
        return _by_registration(catalog, "job_category", JOB_CATEGORIES, slug)
    if slug == "hours-by-module":
        return _hours_by_module(catalog)
    if slug == "hours-by-kind":
        return _hours_by_kind()
    if slug == "certificates-by-month":
        return _certificates_by_month()
    if slug == "one-requirement-away":
        return _one_requirement_away(catalog)
    if slug == "workshops":
        return _workshops(catalog)
    raise KeyError(slug)


def chart_svg(report: Report) -> bytes:
    """Draw the report's chart as a self-contained SVG (no scripts, no addresses outside the tool)."""
    import pygal
    from pygal.etree import etree
    from pygal.style import Style

    if report.chart is None:
        raise KeyError(report.slug)
    label_column, value_column = report.chart
    # Dark text on white, and the tool's blue: readable, and no colour carries meaning alone (the table says all).
    style = Style(background="white", plot_background="white", foreground="#1a1a1a", foreground_strong="#1a1a1a",
                  foreground_subtle="#555555", colors=("#0b5cad",), font_family="DejaVu Sans, Arial, sans-serif",
                  label_font_size=12, major_label_font_size=12, title_font_size=16, value_font_size=12)
    chart = pygal.Bar(style=style, js=[], show_legend=False, width=800, height=420, x_label_rotation=30,
                      print_values=True, title=report.title, no_data_text="Nothing to show yet")
    chart.x_labels = [str(row[label_column]) for row in report.rows]
    chart.add(report.header[value_column], [float(Decimal(str(row[value_column]))) for row in report.rows])
    # pygal always embeds a script with its tooltip settings: an image needs none, so it is taken out.
    tree = chart.render_tree()
    for parent in tree.iter():
        for child in list(parent):
            if str(child.tag).endswith("script"):
                parent.remove(child)
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + etree.tostring(tree)
