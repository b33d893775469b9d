"""The PHI vocabulary: which identifiers name protected health information.

Rules about PHI (logs, outputs, audit, storage) all ask the same question of an
identifier -- "does `patient.date_of_birth` / `getSsn()` / `memberId` carry
PHI?" -- so the answer lives here, configurable per deployment. Identifiers are
split into lowercase words (camelCase, snake_case, kebab-case, dots) and
matched against single-word and multi-word terms, so `dob`, `birthDate`,
`date_of_birth` and `patient.birth_date` are all recognised without a regex
per spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import re
from functools import lru_cache

from assistant.review import re2fast as re2

# Each term is a sequence of words, written as it would appear snake_cased.
# Multi-word terms match consecutive words of an identifier.
_DEFAULT_TERMS: tuple[str, ...] = (
    # identity
    "name", "full_name", "first_name", "last_name", "given_name", "family_name", "middle_name",
    "display_name", "patient_name", "maiden_name", "surname", "forename", "given", "family",
    "fullname", "firstname", "lastname", "givenname", "familyname", "displayname",
    "patientname",
    # identifiers
    "ssn", "social_security", "social_security_number", "sin", "nhs_number", "nhsnumber",
    "mrn", "medical_record_number", "medical_record", "chart_number",
    "member_id", "memberid", "insurance_id", "insurance_number", "policy_number", "subscriber_id",
    "medicaid_id", "medicare_id", "beneficiary_id", "health_plan_id", "payer_member_id",
    "national_id", "passport_number", "drivers_license", "license_number", "identifier",
    # dates
    "dob", "date_of_birth", "birth_date", "birthdate", "birthday", "birth_day", "dateofbirth",
    "death_date", "deceased_date_time", "admission_date", "discharge_date",
    # contact
    "address", "street", "street_address", "address_line", "postal_code", "zip", "zip_code", "zipcode",
    "city", "home_address", "phone", "phone_number", "telephone", "mobile", "cell_phone", "telecom",
    "email", "email_address", "fax", "contact",
    # clinical
    "diagnosis", "diagnoses", "diagnosis_code", "icd10", "icd_code", "condition", "conditions",
    "problem_list", "medication", "medications", "prescription", "allergies", "allergy",
    "lab_result", "lab_results", "clinical_note", "clinical_notes", "visit_note", "note_text",
    "hiv_status", "pregnancy", "treatment", "procedure", "chief_complaint", "history",
    "demographics",
)

# Terms that are PHI only on a patient record (`patient.name`, `p.email` with p a patient),
# not on their own (`user.name`, `clinic.address`, `smtp.email`).
_WEAK_TERMS: tuple[str, ...] = (
    "name", "given", "family", "display_name", "displayname", "address", "street", "city", "zip",
    "postal_code", "email", "email_address", "phone", "phone_number", "mobile", "telephone", "fax",
    "contact", "telecom", "identifier", "condition", "conditions", "history", "treatment", "procedure",
    "medication", "medications", "allergies", "allergy", "prescription", "chart_number",
    "admission_date", "discharge_date", "license_number", "zip_code", "zipcode", "home_address",
    "cell_phone", "street_address", "address_line", "fname", "lname",
)

# Methods that turn a whole record into text: logging `patient.toString()` logs every field.
_DUMP_METHODS: frozenset[str] = frozenset({
    "tostring", "to_string", "dict", "to_dict", "todict", "model_dump", "model_dump_json", "json", "tojson",
    "to_json", "asdict", "__dict__", "__repr__", "__str__", "serialize", "dump", "dumps", "as_dict",
    "get_json", "values", "data",
})

# Words that make an identifier NOT PHI even when a PHI term is in it: surrogate
# keys, counts, metadata about a field rather than its value.
_DEFAULT_NEUTRAL: tuple[str, ...] = (
    "id", "ids", "uuid", "guid", "token", "key", "ref", "reference", "hash", "hashed", "digest",
    "count", "counts", "total", "length", "len", "size", "num", "number_of", "type", "types", "kind",
    "status", "code_system", "version", "index", "idx", "pseudonym", "pseudo", "surrogate", "masked",
    "redacted", "last4", "last_four", "last", "4", "four", "suffix", "tail", "anon", "anonymized", "deidentified", "present", "exists", "valid", "is", "has",
    "enabled", "format", "field", "fields", "column", "columns", "label", "template", "prefix",
    "duration", "ms", "elapsed", "latency", "class", "category", "service", "svc", "repo",
    "repository", "client", "dao", "queue", "topic", "schema", "table", "path", "url", "endpoint",
    "handler", "logger", "log", "factory", "mapper", "builder", "validator", "cache", "key", "ward",
    "unit", "bed", "room", "department", "facility", "tenant", "org", "organization", "practitioner",
    "provider", "doctor", "physician", "user", "username", "host", "hostname", "file", "filename",
    "bucket", "job", "task", "event", "span", "trace", "request", "response", "error", "exception",
)

# Words whose presence alone means "this is the patient (or a record of one)".
_RECORD_WORDS: tuple[str, ...] = (
    "patient", "patients", "pt", "member", "beneficiary", "subscriber", "enrollee", "record", "chart",
    "encounter", "demographics", "person", "resident", "client_record", "claimant",
)

# Python's re here, deliberately: identifiers are short (capped below), the
# pattern has no nested quantifiers, and this runs per identifier, where RE2's
# per-call overhead would dominate the whole review.
_SPLIT_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@lru_cache(maxsize=65536)
def _split(identifier: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in _SPLIT_RE.findall(identifier[:200]))


def split_words(identifier: str) -> list[str]:
    """`patient.getDateOfBirth()` -> ['patient', 'get', 'date', 'of', 'birth']: words, lowercase."""
    return list(_split(identifier))


# Words too common in ordinary code to stand for a multi-word term in the PHI prefilter.
_GENERIC_WORDS = frozenset({
    "result", "results", "status", "date", "number", "code", "note", "notes", "text", "day", "time", "of", "line",
    "type", "value", "list", "info", "data", "first", "last", "full", "display", "home", "id", "record", "set",
})


def _hint_word(term: tuple[str, ...]) -> str:
    """The word of a term to prefilter on: its longest uncommon word (any word is a necessary condition)."""
    specific = [w for w in term if w not in _GENERIC_WORDS]
    return max(specific or term, key=len)


@dataclass(frozen=True)
class PhiVocabulary:
    """Which identifiers carry PHI; `default()` plus per-deployment `extra` terms and `removed` terms.

    Terms are written snake_case (`date_of_birth`); any identifier whose words
    contain the term's words consecutively matches (`patientDateOfBirth`,
    `p.date_of_birth`, `getDateOfBirth()`), unless a neutral word follows the
    PHI term (`mrn_hash`, `name_length`, `patient_id`).
    """

    terms: frozenset[tuple[str, ...]] = field(default_factory=frozenset)
    neutral: frozenset[str] = field(default_factory=frozenset)
    record_words: frozenset[str] = field(default_factory=frozenset)
    weak_terms: frozenset[tuple[str, ...]] = field(default_factory=frozenset)

    @classmethod
    def default(cls) -> PhiVocabulary:
        return cls.build()

    @classmethod
    def build(
        cls,
        extra: Iterable[str] = (),
        removed: Iterable[str] = (),
        *,
        extra_neutral: Iterable[str] = (),
    ) -> PhiVocabulary:
        """The default vocabulary with `extra` terms added and `removed` terms dropped (snake_case or camelCase)."""
        removed_keys = {tuple(split_words(t)) for t in removed}
        terms = {tuple(split_words(t)) for t in (*_DEFAULT_TERMS, *extra)}
        terms = {t for t in terms if t and t not in removed_keys}
        weak = {tuple(split_words(t)) for t in _WEAK_TERMS} - removed_keys
        return cls(
            weak_terms=frozenset(weak),
            terms=frozenset(terms | weak),
            neutral=frozenset({*_DEFAULT_NEUTRAL, *(w.lower() for w in extra_neutral)}),
            record_words=frozenset(w for w in _RECORD_WORDS if (w,) not in removed_keys),
        )

    def __post_init__(self) -> None:
        if not self.terms:
            base = PhiVocabulary.build()
            for name in ("terms", "neutral", "record_words", "weak_terms"):
                object.__setattr__(self, name, getattr(base, name))
        by_first: dict[str, list[tuple[str, ...]]] = {}
        for term in self.terms:
            by_first.setdefault(term[0], []).append(term)
        object.__setattr__(self, "_by_first", by_first)
        object.__setattr__(self, "_term_cache", {})
        object.__setattr__(self, "_record_cache", {})
        # One cheap necessary condition for "this text may hold PHI": the longest word of each term,
        # and every record word, as substrings (lowercase).
        # Short words (ssn, mrn, dob, pt) only count at an identifier-word boundary, or
        # `except` and `options` would hint at a patient. Matched on the original text.
        hints = {_hint_word(term) for term in self.terms} | set(self.record_words)
        long_h = sorted((h for h in hints if len(h) > 3), key=len, reverse=True)
        short_h = sorted((h for h in hints if len(h) <= 3), key=len, reverse=True)
        parts = ["(?i:" + "|".join(re2.escape(h) for h in long_h) + ")"] if long_h else []
        if short_h:
            lower_alt = "|".join(re2.escape(h) for h in short_h)
            cap_alt = "|".join(re2.escape(h.capitalize()) for h in short_h)
            upper_alt = "|".join(re2.escape(h.upper()) for h in short_h)
            parts.append(f"(?:^|[^A-Za-z])(?:{lower_alt}|{cap_alt}|{upper_alt})(?:[^a-z]|$)")
            parts.append(f"[a-z0-9](?:{cap_alt}|{upper_alt})(?:[^a-z]|$)")
        object.__setattr__(self, "hint_re", re2.compile("|".join(parts)))

    def phi_term(self, identifier: str) -> str | None:
        """The PHI term `identifier` names (e.g. 'date_of_birth'), or None when it is not PHI.

        The last PHI term wins and must not be followed by a neutral word:
        `patient.mrn` -> 'mrn'; `patient.id` -> None; `mrnHash` -> None.
        """
        words = split_words(identifier)
        return self.phi_term_words(words)

    def phi_term_words(self, words: list[str] | tuple[str, ...]) -> str | None:
        key = tuple(words)
        cache: dict[tuple[str, ...], str | None] = self._term_cache  # type: ignore[attr-defined]
        if key in cache:
            return cache[key]
        result = self._phi_term_words(key)
        if len(cache) < 100_000:
            cache[key] = result
        return result

    def _phi_term_words(self, words: tuple[str, ...]) -> str | None:
        by_first: dict[str, list[tuple[str, ...]]] = self._by_first  # type: ignore[attr-defined]
        found: str | None = None
        found_end = -1
        i = 0
        n = len(words)
        while i < n:
            best = 0
            for term in by_first.get(words[i], ()):
                k = len(term)
                if k > best and words[i:i + k] == term:
                    best = k
            if best:
                found = "_".join(words[i:i + best])
                found_end = i + best
                i += best
            else:
                i += 1
        if found is None:
            return None
        if any(w in self.neutral for w in words[found_end:]):
            return None
        return found

    def is_record(self, identifier: str) -> bool:
        """Whether `identifier` names a whole patient/record object (`patient`, `memberRecord`, `pt`)."""
        cache: dict[str, bool] = self._record_cache  # type: ignore[attr-defined]
        found = cache.get(identifier)
        if found is None:
            found = self._is_record(identifier)
            if len(cache) < 100_000:
                cache[identifier] = found
        return found

    def _is_record(self, identifier: str) -> bool:
        words = _split(identifier)
        if not words:
            return False
        if words[-1] in self.neutral or words[-1] in {"ids", "id", "count"}:
            return False
        return words[-1] in self.record_words or (len(words) >= 2 and words[-2] in self.record_words and words[-1] in {"record", "data", "info", "details", "obj", "dto", "entity", "resource"})

    def is_weak(self, term: str) -> bool:
        """Whether `term` (as returned by `phi_term`) needs a patient qualifier to count as PHI."""
        return tuple(term.split("_")) in self.weak_terms

    def phi_in_chain(self, segments: list[str], record_vars: frozenset[str] | set[str] = frozenset()) -> str | None:
        """What PHI a dotted chain yields, e.g. ['patient', 'getSsn'] -> 'ssn'; None when it yields none.

        `record_vars` are local names known to hold a patient record (`p` in
        `for p in cohort.patients`). A whole record counts ('patient record'),
        as does a record dumped with `toString()`/`dict()`; a weak term
        (`name`, `email`) counts only under a record (`patient.name`, `p.email`).
        """
        if not segments:
            return None
        segs = list(segments)
        whole = False
        if len(segs) > 1 and segs[-1].lower() in _DUMP_METHODS:
            segs = segs[:-1]
            whole = True
        words_per = [split_words(s) for s in segs]
        last = [w for w in words_per[-1]]
        if len(last) > 1 and last[0] in {"get", "is"}:
            last = last[1:]
        if not last:
            return None
        term = self.phi_term_words(last)
        if term is not None and not whole:
            if not self.is_weak(term):
                return term
            qualifiers = segs[:-1]
            prefix_words = last[: max(0, len(last) - len(term.split("_")))]
            if any(self.is_record(q) or q in record_vars for q in qualifiers) or any(
                w in self.record_words for w in prefix_words
            ):
                return term
            return None
        name = segs[-1]
        if name in record_vars or self.is_record(name):
            if len(segs) == 1 and name.lower() in {"record", "chart", "person"} and not whole:
                return None  # too generic alone: `record` may be any row
            return "patient record"
        return None
