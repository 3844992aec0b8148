"""How long the workers wait before trying again: one rule for gradebook scores and emails."""
import random


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Return the wait after the `attempt`-th failure: `base` doubling each time, at most `cap`, with jitter.

    The jitter spreads the retries of a batch that failed together (an LMS or mail server outage) instead of
    bunching them.
    """
    delay = base * 2 ** min(max(attempt - 1, 0), 30)
    return min(cap, delay * random.uniform(0.8, 1.2))
