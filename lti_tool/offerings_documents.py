"""The offerings as documents: a printable PDF (reportlab, in the certificate's fonts) and an iCalendar feed."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from lti_tool.certificate_documents import certificate_fonts
from lti_tool.services.offerings import Offerings
from lti_tool.services.rules import format_hours


def describe_date(value) -> str:
    """Show a workshop's date as people write it, or say it is not set."""
    return value.strftime("%B %-d, %Y") if value else "Date to be announced"


def render_pdf(offer: Offerings, *, base_url: str) -> bytes:
    """Return the offerings as a printable, tagged-title PDF."""
    fonts = certificate_fonts()
    body = ParagraphStyle("body", fontName=fonts["regular"], fontSize=10, leading=13)
    heading = ParagraphStyle("h", parent=body, fontName=fonts["bold"], fontSize=14, leading=18, spaceBefore=10,
                             spaceAfter=4)
    title = ParagraphStyle("t", parent=heading, fontSize=20, leading=24)
    cell = ParagraphStyle("cell", parent=body, fontSize=9, leading=11)

    def table(rows: list[list[str]], widths: list[float]) -> Table:
        data = [[Paragraph(escape(text), cell) for text in row] for row in rows]
        made = Table(data, colWidths=widths, repeatRows=1)
        made.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, 0), fonts["bold"]), ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey)]))
        return made

    story: list = [Paragraph(escape(f"{offer.program_name}: course offerings"), title),
                   Paragraph(escape(f"Printed {datetime.now(UTC).strftime('%B %-d, %Y')}. The latest "
                                    f"list: {base_url}/offerings"), body)]
    story.append(Paragraph("Upcoming workshops", heading))
    if offer.workshops:
        story.append(table([["Date", "Module", "Hours", "Conference or training", "Venue"]] + [
            [describe_date(w.session_date), f"{w.module_title} ({w.group_title})", format_hours(w.hours),
             w.event_name, w.venue or ""] for w in offer.workshops],
            [1.2 * inch, 2.3 * inch, 0.6 * inch, 1.5 * inch, 1.4 * inch]))
    else:
        story.append(Paragraph("No workshops are scheduled yet.", body))
    for group in offer.groups:
        story.append(Paragraph(escape(f"{group.group.title}: {format_hours(group.group.required_hours)} hours"),
                               heading))
        story.append(Paragraph(escape(group.group.description), body))
        story.append(Spacer(1, 4))
        story.append(table([["Module", "Hours"]] + [[m.title, format_hours(m.credit_hours)] for m in group.modules],
                           [5.8 * inch, 1.2 * inch]))
    story.append(Spacer(1, 10))
    story.append(Paragraph(escape(f"Questions: {offer.contact_name}, {offer.contact_email}"), body))
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=letter, title=f"{offer.program_name}: course offerings",
                      author=offer.contact_name, leftMargin=0.75 * inch, rightMargin=0.75 * inch).build(story)
    return buffer.getvalue()


def render_ics(offer: Offerings, *, base_url: str) -> bytes:
    """Return the published workshops as an iCalendar feed (all-day events; a date-less workshop is left out)."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//Bargaining Certificate//Offerings//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{offer.program_name} workshops")
    host = base_url.split("://", 1)[-1].split("/", 1)[0]
    stamp = datetime.now(UTC)
    for workshop in offer.workshops:
        if workshop.session_date is None:
            continue
        event = Event()
        event.add("uid", f"workshop-{workshop.public_id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", workshop.session_date)
        event.add("dtend", workshop.session_date + timedelta(days=1))
        event.add("summary", f"{workshop.module_title} ({format_hours(workshop.hours)} hours) — {workshop.event_name}")
        if workshop.venue:
            event.add("location", workshop.venue)
        event.add("description", f"{workshop.group_title}, {format_hours(workshop.hours)} hours toward the "
                                 f"{offer.program_name}. Questions: {offer.contact_email}.")
        event.add("url", f"{base_url}/offerings")
        calendar.add_component(event)
    return calendar.to_ical()
