"""The rules of finishing a module: sections, required activities, the knowledge check; stored once."""
import pytest
import sqlalchemy as sa

from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, ModuleCompletion, QuizAttempt
from lti_tool.services import progress

MODULE = "esp-bargaining"


@pytest.fixture
def member(app, platform, do_launch):
    """An account made by a real launch; returns (account id, course id)."""
    do_launch(platform, "member")
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        return account.id


def correct_answers(module):
    return {q.id: [str(i) for i, c in enumerate(q.choices) if c.correct] for q in module.knowledge_check.questions}


def wrong_answers(module):
    return {q.id: [str(next(i for i, c in enumerate(q.choices) if not c.correct))]
            for q in module.knowledge_check.questions}


def fill(activity):
    return {f.name: f"My answer to {f.label}" for f in activity.fields}


def do_everything_but(app, account_id, module, skip):
    if skip != "sections":
        for section in module.sections:
            progress.visit_section(account_id, module, section.slug)
    else:
        for section in module.sections[:-1]:
            progress.visit_section(account_id, module, section.slug)
    for activity in module.activities:
        if activity.required and skip == "activity" and activity is next(a for a in module.activities if a.required):
            continue
        progress.save_activity_answers(account_id, module, activity, fill(activity))
    if skip != "check":
        progress.grade_knowledge_check(account_id, module, correct_answers(module))


@pytest.mark.parametrize("skip", ["sections", "activity", "check"])
def test_module_is_not_complete_while_anything_is_left(app, member, skip):
    with app.app_context():
        module = current_catalog().module(MODULE)
        do_everything_but(app, member, module, skip)
        assert progress.complete_if_done(member, module, None) is None
        state = progress.module_progress(member, module)
        assert not state.complete and 0 < state.percent < 100


def test_module_completes_once_with_its_content_version(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        do_everything_but(app, member, module, skip=None)
        completion = progress.complete_if_done(member, module, None)
        assert completion is not None
        assert (completion.module_slug, completion.content_version, completion.credit_hours) == (
            MODULE, module.content_version, 3)
        db.session.commit()
        again = progress.complete_if_done(member, module, None)
        db.session.commit()
        assert again.id == completion.id
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ModuleCompletion)) == 1
        assert progress.module_progress(member, module).percent == 100


def test_optional_activities_are_not_needed(app, member):
    with app.app_context():
        module = current_catalog().module("educator-compensation")  # has an optional reflection
        optional = [a for a in module.activities if not a.required]
        assert optional
        for section in module.sections:
            progress.visit_section(member, module, section.slug)
        for activity in module.activities:
            if activity.required:
                progress.save_activity_answers(member, module, activity, fill(activity))
        progress.grade_knowledge_check(member, module, correct_answers(module))
        assert progress.complete_if_done(member, module, None) is not None


def test_knowledge_check_grades_keeps_every_attempt_and_allows_retakes(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        failed = progress.grade_knowledge_check(member, module, wrong_answers(module))
        assert failed.attempt.score == 0 and not failed.attempt.passed
        assert all(not r.correct and r.question.feedback for r in failed.results)
        passed = progress.grade_knowledge_check(member, module, correct_answers(module))
        assert passed.attempt.score == 1 and passed.attempt.passed
        assert passed.attempt.content_version == module.content_version
        state = progress.module_progress(member, module)
        assert state.attempts == 2 and state.best_score == 1 and state.passed
        assert db.session.scalar(sa.select(sa.func.count()).select_from(QuizAttempt)) == 2


def test_pass_mark_is_the_boundary(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        questions = module.knowledge_check.questions
        answers = correct_answers(module)
        wrong = wrong_answers(module)
        needed = -(-int(module.knowledge_check.pass_mark * 100) * len(questions) // 100)  # ceil
        for q in questions[needed:]:
            answers[q.id] = wrong[q.id]
        assert progress.grade_knowledge_check(member, module, answers).attempt.passed
        for q in questions[needed - 1:]:
            answers[q.id] = wrong[q.id]
        assert not progress.grade_knowledge_check(member, module, answers).attempt.passed


def test_multiple_answer_question_needs_exactly_the_right_set(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        question = next(q for q in module.knowledge_check.questions if q.kind == "multiple")
        right = [i for i, c in enumerate(question.choices) if c.correct]
        answers = correct_answers(module)
        answers[question.id] = [str(i) for i in range(len(question.choices))]  # everything ticked
        result = progress.grade_knowledge_check(member, module, answers)
        assert not next(r for r in result.results if r.question.id == question.id).correct
        answers[question.id] = [str(i) for i in right]
        result = progress.grade_knowledge_check(member, module, answers)
        assert next(r for r in result.results if r.question.id == question.id).correct


@pytest.mark.parametrize("answers, message", [
    ({}, "Choose one answer."),
    ({"__first__": ["99"]}, "not one of the answers"),
    ({"__first__": ["x"]}, "not one of the answers"),
])
def test_invalid_knowledge_check_answers_are_refused_and_not_stored(app, member, answers, message):
    with app.app_context():
        module = current_catalog().module(MODULE)
        chosen = correct_answers(module)
        first = module.knowledge_check.questions[0].id
        if "__first__" in answers:
            chosen[first] = answers["__first__"]
        else:
            chosen.pop(first)
        with pytest.raises(progress.AnswerError) as error:
            progress.grade_knowledge_check(member, module, chosen)
        assert message in error.value.errors[first]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(QuizAttempt)) == 0


def test_activity_answers_are_validated_saved_and_revisable(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        activity = next(a for a in module.activities if a.required)
        with pytest.raises(progress.AnswerError) as error:
            progress.save_activity_answers(member, module, activity, {})
        assert set(error.value.errors) == {f.name for f in activity.fields if f.required}
        too_long = fill(activity)
        too_long[activity.fields[0].name] = "x" * 30_000
        with pytest.raises(progress.AnswerError):
            progress.save_activity_answers(member, module, activity, too_long)
        progress.save_activity_answers(member, module, activity, fill(activity))
        changed = fill(activity)
        changed[activity.fields[0].name] = "A better answer"
        progress.save_activity_answers(member, module, activity, changed)
        db.session.commit()
        saved = progress.module_progress(member, module).answers[activity.slug]
        assert saved[activity.fields[0].name] == "A better answer"


def test_finish_if_done_reports_the_completion_only_the_first_time(app, member):
    with app.app_context():
        module = current_catalog().module(MODULE)
        do_everything_but(app, member, module, skip=None)
        first = progress.finish_if_done(member, module, None)
        assert first is not None and first.module_slug == MODULE
        assert progress.finish_if_done(member, module, None) is None  # already recorded: nothing new
        assert progress.complete_if_done(member, module, None).id == first.id
