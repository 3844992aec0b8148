"""The rules of a module: visiting sections, answering activities, the knowledge check, and completion.

A module is complete when every section was visited, every required activity answered (all its required
fields filled) and the knowledge check passed.
"""
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from lti_tool.catalog import Activity, Module, Question
from lti_tool.extensions import db
from lti_tool.models import ActivityAnswer, ModuleCompletion, QuizAttempt, SectionVisit
from lti_tool.models.base import insert_or_ignore, upsert, utcnow
from lti_tool.services.completions import record_module_completion

MAX_ANSWER_LENGTH = 20_000


class AnswerError(ValueError):
    """Answers that cannot be saved, with a message per field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ModuleProgress:
    """Where an account stands in one module."""

    visited: frozenset[str]
    answered: frozenset[str]
    answers: dict[str, dict]
    best_score: float | None
    passed: bool
    attempts: int
    completion: ModuleCompletion | None
    total_steps: int
    done_steps: int

    @property
    def percent(self) -> int:
        """Return the share of the module done, 0-100."""
        return round(100 * self.done_steps / self.total_steps) if self.total_steps else 0

    @property
    def complete(self) -> bool:
        return self.completion is not None


def _activity_complete(activity: Activity, answers: dict | None) -> bool:
    if not answers:
        return False
    return all((answers.get(f.name) or "").strip() for f in activity.fields if f.required)


def module_progress(account_id: int, module: Module) -> ModuleProgress:
    """Compute an account's progress in a module from what it has done."""
    return modules_progress(account_id, [module])[module.slug]


_ACCOUNT: sa.BindParameter[int] = sa.bindparam("account_id")
_SLUGS: sa.BindParameter[list[str]] = sa.bindparam("slugs", expanding=True)
# Built once: building these costs more than running them. Only the completions are ORM objects (callers keep them).
# The answers, the visits and the knowledge-check scores come back in one statement (one round trip), each row
# tagged with its kind; the first SELECT gives the columns their types (the answers' JSON, the score's number).
_ANSWER, _VISIT, _SCORE = "answer", "visit", "score"
_RECORDS = sa.union_all(
    sa.select(sa.literal_column(f"'{_ANSWER}'", sa.String).label("kind"), ActivityAnswer.module_slug,
              ActivityAnswer.activity_slug.label("slug"), ActivityAnswer.answers,
              sa.cast(sa.null(), QuizAttempt.score.type).label("best"), sa.cast(sa.null(), sa.Integer).label("tries"))
    .where(ActivityAnswer.account_id == _ACCOUNT, ActivityAnswer.module_slug.in_(_SLUGS)),
    sa.select(sa.literal_column(f"'{_VISIT}'", sa.String), SectionVisit.module_slug, SectionVisit.section_slug,
              sa.null(), sa.null(), sa.null())
    .where(SectionVisit.account_id == _ACCOUNT, SectionVisit.module_slug.in_(_SLUGS)),
    sa.select(sa.literal_column(f"'{_SCORE}'", sa.String), QuizAttempt.module_slug, sa.null(), sa.null(),
              sa.func.max(QuizAttempt.score), sa.func.count(QuizAttempt.id))
    .where(QuizAttempt.account_id == _ACCOUNT, QuizAttempt.module_slug.in_(_SLUGS))
    .group_by(QuizAttempt.module_slug))
_COMPLETIONS = sa.select(ModuleCompletion).where(ModuleCompletion.account_id == _ACCOUNT,
                                                 ModuleCompletion.module_slug.in_(_SLUGS))


def modules_progress(account_id: int, modules: Sequence[Module]) -> dict[str, ModuleProgress]:
    """Compute an account's progress in several modules (by slug), in two queries whatever their number."""
    slugs = [m.slug for m in modules]
    params = {"account_id": account_id, "slugs": slugs}
    completions = {c.module_slug: c for c in db.session.scalars(_COMPLETIONS, params)}  # flushes the session
    connection = db.session.connection()  # plain rows: no ORM execution layer
    visited: dict[str, set[str]] = {slug: set() for slug in slugs}
    answers: dict[str, dict[str, dict]] = {slug: {} for slug in slugs}
    scores: dict[str, tuple[float | None, int]] = {}
    for kind, module_slug, slug, given, best, attempts in connection.execute(_RECORDS, params):
        if kind == _VISIT:
            visited[module_slug].add(slug)
        elif kind == _ANSWER:
            answers[module_slug][slug] = given
        else:
            scores[module_slug] = (best, attempts)
    return {m.slug: _progress_in(m, frozenset(visited[m.slug]), answers[m.slug], scores.get(m.slug, (None, 0)),
                                 completions.get(m.slug)) for m in modules}


def _progress_in(module: Module, visited: frozenset[str], answers: dict[str, dict],
                 score: tuple[float | None, int], completion: ModuleCompletion | None) -> ModuleProgress:
    best_score, attempts = score
    answered = frozenset(a.slug for a in module.activities if _activity_complete(a, answers.get(a.slug)))
    passed = best_score is not None and best_score >= module.knowledge_check.pass_mark
    section_slugs = {s.slug for s in module.sections}
    required = [a for a in module.activities if a.required]
    total = len(module.sections) + len(required) + 1
    done = len(visited & section_slugs) + sum(1 for a in required if a.slug in answered) + (1 if passed else 0)
    return ModuleProgress(visited=visited, answered=answered, answers=answers, best_score=best_score,
                          passed=passed, attempts=attempts, completion=completion, total_steps=total,
                          done_steps=done)


def finish_if_done(account_id: int, module: Module, course_id: int | None,
                   progress: ModuleProgress | None = None) -> ModuleCompletion | None:
    """Record the completion when every rule is met for the first time; return it only from that call.

    `progress` is the account's progress in the module as read after its last change, when the caller has it.
    """
    progress = progress or module_progress(account_id, module)
    if progress.completion is not None or progress.done_steps < progress.total_steps:
        return None
    return record_module_completion(account_id, module, course_id)


def complete_if_done(account_id: int, module: Module, course_id: int | None) -> ModuleCompletion | None:
    """Record the completion when every rule is met; return it (or None while something is left)."""
    return finish_if_done(account_id, module, course_id) or module_progress(account_id, module).completion


def visit_section(account_id: int, module: Module, section_slug: str) -> None:
    """Record that the account opened a section (the first visit counts)."""
    insert_or_ignore(db.session, SectionVisit, {"account_id": account_id, "module_slug": module.slug,
                                                "section_slug": section_slug, "visited_at": utcnow()},
                     conflict=["account_id", "module_slug", "section_slug"])


def _answers_schema(activity: Activity) -> Schema:
    return Schema.from_dict({
        f.name: fields.String(load_default="", validate=validate.Length(max=MAX_ANSWER_LENGTH))
        for f in activity.fields
    })()


def save_activity_answers(account_id: int, module: Module, activity: Activity, form: dict) -> dict:
    """Validate and store the member's answers to an activity; return them."""
    try:
        values = _answers_schema(activity).load({f.name: form.get(f.name, "") for f in activity.fields})
    except ValidationError as exc:
        raise AnswerError({k: " ".join(v) for k, v in exc.messages_dict.items()}) from exc
    values = {k: v.strip() for k, v in values.items()}
    missing = {f.name: "Please answer this before saving." for f in activity.fields
               if f.required and not values.get(f.name)}
    if missing:
        raise AnswerError(missing)
    upsert(db.session, ActivityAnswer, {"account_id": account_id, "module_slug": module.slug,
                                        "activity_slug": activity.slug, "answers": values, "updated_at": utcnow()},
           conflict=["account_id", "module_slug", "activity_slug"], update=["answers", "updated_at"])
    return values


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    chosen: tuple[int, ...]
    correct: bool


@dataclass(frozen=True)
class CheckResult:
    attempt: QuizAttempt
    results: tuple[QuestionResult, ...]
    pass_mark: float


def _choices_schema(module: Module) -> Schema:
    fields_: dict[str, fields.Field] = {}
    for q in module.knowledge_check.questions:
        index = fields.Integer(validate=validate.Range(min=0, max=len(q.choices) - 1))
        if q.kind == "single":
            fields_[q.id] = fields.List(index, required=True,
                                        validate=validate.Length(equal=1, error="Choose one answer."))
        else:
            fields_[q.id] = fields.List(index, required=True,
                                        validate=validate.Length(min=1, error="Choose at least one answer."))
    return Schema.from_dict(fields_)()


def grade_knowledge_check(account_id: int, module: Module, chosen: dict[str, list[str]]) -> CheckResult:
    """Grade one attempt, keep it, and return per-question results with feedback."""
    try:
        answers = _choices_schema(module).load({q.id: chosen.get(q.id, []) for q in module.knowledge_check.questions})
    except ValidationError as exc:
        kinds = {q.id: q.kind for q in module.knowledge_check.questions}
        errors = {}
        for key in exc.messages:
            if not chosen.get(key):
                errors[key] = "Choose one answer." if kinds.get(key) == "single" else "Choose at least one answer."
            elif kinds.get(key) == "single" and len(chosen[key]) > 1:
                errors[key] = "Choose only one answer."
            else:
                errors[key] = "That choice is not one of the answers."
        raise AnswerError(errors) from exc
    results = []
    for q in module.knowledge_check.questions:
        picked = tuple(sorted(set(answers[q.id])))
        right = tuple(i for i, c in enumerate(q.choices) if c.correct)
        results.append(QuestionResult(question=q, chosen=picked, correct=picked == right))
    score = sum(r.correct for r in results) / len(results)
    attempt = QuizAttempt(account_id=account_id, module_slug=module.slug, content_version=module.content_version,
                          answers={r.question.id: list(r.chosen) for r in results}, score=score,
                          passed=score >= module.knowledge_check.pass_mark, created_at=utcnow())
    db.session.add(attempt)
    db.session.flush()
    return CheckResult(attempt=attempt, results=tuple(results), pass_mark=module.knowledge_check.pass_mark)
