"""Text that comes in from outside (claims, rosters, forms): control characters out before it is stored or shown.

PostgreSQL refuses NUL in text, SQLite and PostgreSQL refuse lone surrogates (a JSON `\\ud800` escape), and the
other C0 controls are invisible junk that breaks pages, PDFs and CSV files. Display text loses them at the boundary
where it enters; identifiers (a `sub`, a context id) that carry them are refused, since changing an identifier would
change whom or what it names.
"""
import re

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

#: C0 controls and DEL, and lone surrogates (which cannot be encoded as UTF-8).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
#: The same, but keeping tab, newline and carriage return (multi-line text: reflections, comments).
_UNSAFE_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"[\t\n\r]+")


def has_control_characters(text: str) -> bool:
    """Whether the text holds a C0 control character, DEL or a lone surrogate."""
    return _UNSAFE.search(text) is not None


def clean_line(text: str) -> str:
    """Return one-line display text (a name, an email, a title): tabs and line breaks become a space."""
    return _UNSAFE.sub("", _LINE_BREAKS.sub(" ", text))


def clean_text(text: str) -> str:
    """Return text with control characters removed, keeping tabs and line breaks."""
    return _UNSAFE_MULTILINE.sub("", text)


def clean_json(value):
    """Return a JSON value with every string (and key) cleaned as multi-line text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


class CleanMultiDict(ImmutableMultiDict):
    """Form fields and query parameters with control characters removed (tabs and line breaks kept).

    Used as the request's parameter storage, so every form and query string the tool reads is clean, whichever
    view reads it.
    """

    def __init__(self, mapping=None):
        if mapping is None:
            super().__init__()
            return
        if isinstance(mapping, MultiDict):
            items = mapping.items(multi=True)
        elif isinstance(mapping, dict):
            items = ((k, v) for k, values in mapping.items()
                     for v in (values if isinstance(values, (list, tuple)) else [values]))
        else:
            items = mapping
        super().__init__([(clean_text(k) if isinstance(k, str) else k, clean_text(v) if isinstance(v, str) else v)
                          for k, v in items])


class CleanRequest(Request):
    """Flask's request, whose form fields and query parameters come without control characters."""

    parameter_storage_class = CleanMultiDict
