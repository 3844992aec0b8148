"""What the workshop pages say to instructors and members, in one place so the wording stays consistent and
is reviewed together (the services and views raise or show these; none of them decides anything)."""

from lti_tool.wording import plural

# -- the gradebook -----------------------------------------------------------------------------------------------

NO_GRADEBOOK_NOTICE = ("The LMS does not offer its gradebook to this tool here (Assignment and Grade Services): "
                       "grades are recorded in the tool and count toward the certificate, but do not appear in the "
                       "LMS gradebook.")
UNLINKED_NOTICE = ("Open this workshop from its link in the course first, so its grades reach its own gradebook "
                   "column; attendance can be recorded meanwhile.")

# -- the grading page --------------------------------------------------------------------------------------------

CHOOSE_SHEET = "Choose the sign-in sheet (a CSV file) to import."
NOTHING_SAVED_YET = "Nothing is saved yet: review the roster and save."
CHOICES_MARKED = "Your choices are marked below. " + NOTHING_SAVED_YET
ROSTER_CHANGED = ("The form has rows for people who are no longer on the course roster; nothing was saved. "
                  "Reload the page and enter the grades again.")
GRADE_NOT_REMOVABLE = ("A saved grade can be changed but not removed: choose complete or incomplete (incomplete with "
                       "0 hours takes the hours back).")


def sheet_imported(matched: int, needing_a_choice: int) -> str:
    """Say what a sign-in sheet import marked, and that nothing is saved until the instructor saves."""
    choices = ""
    if needing_a_choice:
        choices = f"{plural(needing_a_choice, 'row')} need{'s' if needing_a_choice == 1 else ''} your choice. "
    return f"The sign-in sheet matched {plural(matched, 'member')} (marked present below). {choices}{NOTHING_SAVED_YET}"


def grades_saved(graded: int, attendance: int) -> str:
    """Say what a save changed: grades queued for the gradebook, attendance recorded, or nothing."""
    parts = []
    if graded:
        parts.append(f"{plural(graded, 'grade')} saved and sent to the gradebook queue")
    if attendance:
        parts.append(f"attendance saved for {plural(attendance, 'member')}")
    return ("; ".join(parts).capitalize() + ".") if parts else "Nothing had changed: nothing was saved."


# -- check-in ----------------------------------------------------------------------------------------------------

WRONG_CODE = ("That code does not work for this workshop. Check the code shown in the room, and that you opened "
              "this workshop's link in your course, then try again.")
TOO_MANY_CODES = ("Too many wrong codes: wait a few minutes, then enter the code shown in the room again. If it "
                  "still does not work, ask the instructor to mark you present.")
TOO_MANY_CHECK_IN_LINKS = "Too many check-in requests from this network: wait a minute and try again."
CHECK_IN_ONLY_FOR_MEMBERS = ("Check-in is for the workshop's members; instructors record attendance on the grading "
                             "page.")
CHECKED_IN = "You are checked in. Your instructor records your hours after the session."
ALREADY_CHECKED_IN = "You were already checked in."
