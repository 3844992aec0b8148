"""Small helpers for the words people read."""


def with_article(noun: str) -> str:
    """Put "a" or "an" before a noun as it is said: "an instructor", "an admin", "a member"."""
    noun = str(noun).strip()
    # By the first letter's sound; the tool's roles and delivery modes have no "hour"/"user"-style exceptions.
    return f"{'an' if noun[:1].lower() in 'aeiou' and noun else 'a'} {noun}"


def first_sentence(text: str) -> str:
    """Return the first sentence of a paragraph (a card's short line; the whole text lives on its own page)."""
    text = " ".join(str(text).split())
    ends = [i for i in (text.find(end) for end in (". ", "? ", "! ")) if i > 0]
    return text[:min(ends) + 1] if ends else text


def plural(count: int, word: str, many: str | None = None) -> str:
    """Return "1 member" or "3 members" (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
