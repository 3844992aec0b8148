"""Markdown to safe HTML: raw HTML is off in the parser, and the output goes through a sanitiser too."""
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")

_ALLOWED_TAGS = {"p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre", "blockquote",
                 "table", "thead", "tbody", "tr", "th", "td", "hr", "br", "a"}


@lru_cache(maxsize=512)
def render_markdown(text: str) -> Markup:
    """Render trusted-format but untrusted-content Markdown to sanitised HTML."""
    html = _parser.render(text)
    clean = nh3.clean(html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}, "th": {"align"}, "td": {"align"}},
                      url_schemes={"https", "http", "mailto"}, link_rel="noopener noreferrer")
    return Markup(clean)  # noqa: S704 - sanitised just above


#: Statute shorthand as module text writes it: "c. 150E, § 9A", "c.150E §9A", "§ 7(b)", "§§ 21-23", "c.32B".
_CHAPTER_AND_SECTION = re.compile(
    r"(?:M\.G\.L\.\s*)?\bc\.\s?(\d+[A-Z]?),?\s?(§|section)\s?(\d+[A-Z]?(?:\([a-z0-9]+\))*)")
_SECTIONS = re.compile(r"(?<![\w§])§§\s?(\d+[A-Z]?)\s?[-–]\s?(\d+[A-Z]?)")
_SECTION = re.compile(r"(?<![\w§])§\s?(\d+[A-Z]?(?:\([a-z0-9]+\))*)")
_CHAPTER = re.compile(r"(?:M\.G\.L\.\s*)?\bc\.\s?(\d+[A-Z]?)\b")


def spell_out_first_shorthand(text: str) -> str:
    """Write the page's first statute shorthand out in words, so a screen reader says "section", not "section sign".

    "c.150E §9A" becomes "chapter 150E, section 9A (c.150E §9A)"; later mentions on the page stay short.
    """
    found = [(m.start(), kind, m) for kind, pattern in (("both", _CHAPTER_AND_SECTION), ("range", _SECTIONS),
                                                        ("section", _SECTION), ("chapter", _CHAPTER))
             for m in [pattern.search(text)] if m]
    if not found:
        return text
    words = []
    first_both = next((m for _, kind, m in found if kind == "both"), None)
    if first_both:
        words.append((first_both, f"chapter {first_both.group(1)}, section {first_both.group(3)}"))
    else:
        chapter = next((m for _, kind, m in found if kind == "chapter"), None)
        if chapter:
            words.append((chapter, f"chapter {chapter.group(1)}"))
    section = min((m for _, kind, m in found if kind in ("range", "section")), key=lambda m: m.start(), default=None)
    if section and not (first_both and first_both.start() <= section.start() < first_both.end()):
        spelled = (f"sections {section.group(1)} to {section.group(2)}" if section.re is _SECTIONS
                   else f"section {section.group(1)}")
        if not (first_both and section.start() > first_both.start()):
            words.append((section, spelled))
    for match, spelled in sorted(words, key=lambda w: w[0].start(), reverse=True):
        # "c.150E, section 8" needs only its "c." read out; a "§" form keeps the short form for readers who know it.
        shown = spelled if match.re is _CHAPTER_AND_SECTION and match.group(2) == "section" else \
            f"{spelled} ({match.group(0)})"
        text = f"{text[:match.start()]}{shown}{text[match.end():]}"
    return text


_LAW_REF = re.compile(r"\{\{law:([a-z0-9-]+)\}\}")


def _source_note(entry) -> str:
    if entry is None:  # content check and the loader refuse these; never show the raw marker to a member
        return ""
    return (f'<span class="law-source">(Source: <a href="{escape(entry.source)}" rel="noopener noreferrer">'
            f'{escape(entry.citation)}</a>)</span>')


def render_content(text: str, register) -> Markup:
    """Render module Markdown with its `{{law:<id>}}` references as linked "Source" notes from the register."""
    html = str(render_markdown(spell_out_first_shorthand(text)))
    return Markup(_LAW_REF.sub(lambda m: _source_note(register.entry(m.group(1))), html))  # noqa: S704 - escaped


def render_plain(text: str, register) -> Markup:
    """Escape plain module text (feedback, instructions) and turn its `{{law:<id>}}` into Source notes."""
    html = str(escape(text))
    return Markup(_LAW_REF.sub(lambda m: _source_note(register.entry(m.group(1))), html))  # noqa: S704 - escaped
