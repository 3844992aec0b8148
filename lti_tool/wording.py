"""Small helpers for the words people read."""


def with_article(noun: str) -> str:
    """Put "a" or "an" before a noun as it is said: "an instructor", "an admin", "a member"."""
    noun = str(noun).strip()
    # By the first letter's sound; the tool's roles and delivery modes have no "hour"/"user"-style exceptions.
    return f"{'an' if noun[:1].lower() in 'aeiou' and noun else 'a'} {noun}"
