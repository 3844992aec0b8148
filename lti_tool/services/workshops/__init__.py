"""Workshops, by job: `records` (the workshop and its members' records), `grading` (grades into the ledger and
the gradebook outbox), `sheets` (the sign-in sheet import), `check_in` (in-person check-in codes) and
`messages` (what the workshop pages say).

The grading form itself (its fields, validation and bulk actions) is read beside its view, in
`lti_tool.blueprints.workshop_forms`. Like every service these flush and never commit.
"""
from lti_tool.services.workshops.check_in import (
    CHECK_IN_ALPHABET,
    CHECK_IN_LENGTH,
    CHECK_IN_TTL,
    CheckInError,
    check_in,
    current_code,
    new_check_in_code,
    workshop_for_code,
)
from lti_tool.services.workshops.grading import (
    GradeInput,
    column_label,
    gradebook_notice,
    gradebook_score,
    line_item_target,
    save_grade,
    save_grades,
    save_row,
    score_statuses,
)
from lti_tool.services.workshops.messages import NO_GRADEBOOK_NOTICE, UNLINKED_NOTICE, WRONG_CODE
from lti_tool.services.workshops.records import (
    ATTENDANCE_SOURCES,
    LINE_ITEM_TAG,
    MAX_COMMENT,
    RESULTS,
    SCORE_MAXIMUM,
    WorkshopError,
    link_to_launch,
    lock_for_grading,
    module_for,
    records_by_account,
    workshop_in_course,
)
from lti_tool.services.workshops.sheets import (
    MAX_SHEET_ROWS,
    SheetError,
    SheetImport,
    SheetMatch,
    SheetProblem,
    SheetRow,
    normalise_name,
    problems_from_form,
    read_sign_in_sheet,
    resolve_problems,
)

__all__ = [
    "ATTENDANCE_SOURCES", "CHECK_IN_ALPHABET", "CHECK_IN_LENGTH", "CHECK_IN_TTL", "LINE_ITEM_TAG", "MAX_COMMENT",
    "MAX_SHEET_ROWS", "NO_GRADEBOOK_NOTICE", "RESULTS", "SCORE_MAXIMUM", "UNLINKED_NOTICE", "WRONG_CODE",
    "CheckInError", "GradeInput", "SheetError", "SheetImport", "SheetMatch", "SheetProblem", "SheetRow",
    "WorkshopError", "check_in", "column_label", "current_code", "gradebook_notice", "gradebook_score",
    "line_item_target", "link_to_launch", "lock_for_grading", "module_for", "new_check_in_code", "normalise_name",
    "problems_from_form", "read_sign_in_sheet", "records_by_account", "resolve_problems", "save_grade", "save_grades",
    "save_row",
    "score_statuses", "workshop_for_code", "workshop_in_course",
]
