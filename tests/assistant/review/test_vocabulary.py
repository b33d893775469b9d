"""The PHI vocabulary: which identifiers carry PHI, and how a deployment changes that."""

from __future__ import annotations

import pytest

from assistant.review.vocabulary import PhiVocabulary, split_words

V = PhiVocabulary.default()


@pytest.mark.parametrize(
    ("identifier", "words"),
    [("patient.getDateOfBirth()", ["patient", "get", "date", "of", "birth"]), ("MRNNumber", ["mrn", "number"]),
     ("p.full_name", ["p", "full", "name"]), ("HTTPServer2", ["http", "server", "2"])],
)
def test_split_words(identifier: str, words: list[str]) -> None:
    assert split_words(identifier) == words


@pytest.mark.parametrize(
    ("identifier", "term"),
    [("patient.date_of_birth", "date_of_birth"), ("getSsn", "ssn"), ("memberId", "member_id"), ("DOB", "dob"),
     ("birthDate", "birth_date"), ("primary_diagnosis", "diagnosis"), ("patient_id", None), ("mrnHash", None),
     ("name_length", None), ("appointment.status", None)],
)
def test_phi_term(identifier: str, term: str | None) -> None:
    assert V.phi_term(identifier) == term


@pytest.mark.parametrize(
    ("chain", "record_vars", "expected"),
    [(["patient", "full_name"], (), "full_name"), (["user", "name"], (), None), (["p", "name"], ("p",), "name"),
     (["patient", "toString"], (), "patient record"), (["patient", "id"], (), None), (["record"], (), None),
     (["appt", "patient", "displayName"], (), "display_name")],
)
def test_phi_in_chain(chain: list[str], record_vars: tuple[str, ...], expected: str | None) -> None:
    assert V.phi_in_chain(chain, set(record_vars)) == expected


def test_a_deployment_adds_and_removes_terms() -> None:
    custom = PhiVocabulary.build(extra=["tribalEnrollmentId"], removed=["diagnosis"])
    assert custom.phi_term("member.tribal_enrollment_id") == "tribal_enrollment_id"
    assert custom.phi_term("primary_diagnosis") is None
    assert V.phi_term("member.tribal_enrollment_id") is None


def test_the_prefilter_ignores_short_words_inside_ordinary_words() -> None:
    assert V.hint_re.search("except options attempt") is None  # type: ignore[attr-defined]
    assert V.hint_re.search("log(p.ssn)") and V.hint_re.search("patientDob")  # type: ignore[attr-defined]


def test_custom_vocabulary_changes_what_the_reviewer_reports() -> None:
    from assistant.diffs import parse_diff
    from assistant.review.engine import review

    diff = (
        "diff --git a/svc/a.py b/svc/a.py\n--- a/svc/a.py\n+++ b/svc/a.py\n@@ -0,0 +1 @@\n"
        "+log.info(\"enrolled %s\", member.tribal_enrollment_id)\n"
    )
    assert review(parse_diff(diff)).findings == []
    custom = PhiVocabulary.build(extra=["tribal_enrollment_id"])
    assert [f.rule for f in review(parse_diff(diff), custom).findings] == ["PHI-LOG-001"]
