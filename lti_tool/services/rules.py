"""The certificate's rules, computed from ledger entries and program.yaml alone (no database access).

Each module counts at most its own credit hours, however many times it was earned (a member who finishes
Foundations self-paced and also attends a Foundations workshop earns 6 hours, not 12); partial hours from
several workshops add up to that cap. Hours above a group's requirement do not fill another group. A group counts
only the kinds of credit program.yaml names for it (`counts`: self-paced completion, graded workshop, admin
adjustment; all by default); a reversal counts as the kind of the entry it cancels.
"""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from lti_tool.catalog import Catalog


@dataclass(frozen=True)
class GroupProgress:
    id: str
    title: str
    required_hours: Decimal
    #: Hours that count toward the group (each module capped at its credit hours).
    hours: Decimal
    min_distinct_modules: int
    #: Modules of the group earned in full.
    complete_modules: tuple[str, ...]
    #: The kinds of credit that fill this group (from program.yaml).
    counts: tuple[str, ...] = ()

    @property
    def counted_hours(self) -> Decimal:
        """Return the hours that count toward the certificate's total (capped at the requirement)."""
        return min(self.hours, self.required_hours)

    @property
    def hours_short(self) -> Decimal:
        return max(self.required_hours - self.hours, Decimal(0))

    @property
    def modules_short(self) -> int:
        return max(self.min_distinct_modules - len(self.complete_modules), 0)

    @property
    def met(self) -> bool:
        return self.hours_short == 0 and self.modules_short == 0

    @property
    def percent(self) -> int:
        return int(100 * self.counted_hours / self.required_hours) if self.required_hours else 100


@dataclass(frozen=True)
class Progress:
    groups: tuple[GroupProgress, ...]
    total_required: Decimal
    #: Net hours per module (after reversals), uncapped: what the ledger says, of every kind.
    module_hours: dict[str, Decimal]

    @property
    def total_hours(self) -> Decimal:
        return sum((g.counted_hours for g in self.groups), Decimal(0))

    @property
    def met(self) -> bool:
        return all(g.met for g in self.groups) and self.total_hours >= self.total_required

    @property
    def what_is_left(self) -> list[str]:
        """Say in plain words what the person still needs."""
        left = []
        for g in self.groups:
            if g.modules_short:
                noun = "elective" if g.modules_short == 1 else "electives"
                left.append(f"{g.modules_short} more {g.title} {noun}")
            elif g.hours_short:
                hours = format_hours(g.hours_short)
                left.append(f"{hours} more {'hour' if hours == '1' else 'hours'} of {g.title}")
        if not left and self.total_hours < self.total_required:
            left.append(f"{format_hours(self.total_required - self.total_hours)} more hours in all")
        return left


def format_hours(value) -> str:
    """Show hours as people write them: 6, 1.5, 2.25 (no trailing zeros, no float noise)."""
    number = Decimal(str(value)).quantize(Decimal("0.01")).normalize()
    return f"{number:f}" if number != number.to_integral() else str(int(number))


def compute_progress(catalog: Catalog, entries: Iterable[tuple[str, Decimal, str]]) -> Progress:
    """Compute a person's progress from (module slug, hours, kind of credit) triples of their ledger entries."""
    module_hours: dict[str, Decimal] = defaultdict(Decimal)
    counted: dict[str, Decimal] = defaultdict(Decimal)
    for module_slug, hours, kind in entries:
        module_hours[module_slug] += Decimal(hours)
        module = catalog.module(module_slug)
        if module is not None and kind in catalog.program.group(module.group).counts:
            counted[module_slug] += Decimal(hours)
    group_hours: dict[str, Decimal] = defaultdict(Decimal)
    complete: dict[str, list[str]] = defaultdict(list)
    for slug, hours in counted.items():
        module = catalog.module(slug)
        if module is None or hours <= 0:
            continue  # a module retired from the catalog keeps its entries but no longer counts
        cap = Decimal(str(module.credit_hours))
        group_hours[module.group] += min(hours, cap)
        if hours >= cap:
            complete[module.group].append(slug)
    groups = tuple(
        GroupProgress(id=g.id, title=g.title, required_hours=Decimal(str(g.required_hours)),
                      hours=group_hours[g.id], min_distinct_modules=g.min_distinct_modules,
                      complete_modules=tuple(sorted(complete[g.id])), counts=g.counts)
        for g in catalog.program.groups
    )
    return Progress(groups=groups, total_required=Decimal(str(catalog.program.total_hours)),
                    module_hours=dict(module_hours))
