"""redact(): recall on PHI and secrets, precision on ordinary code and logs, idempotence, linear time."""

from __future__ import annotations

import time

import pytest

from assistant.redact import is_phi_key, redact, redact_obj

# (text, the sensitive substring that must disappear, the placeholder kind that must appear)
MUST_REDACT = [
    ("SSN 123-45-6789 on file", "123-45-6789", "SSN"),
    ("ssn=123456789", "123456789", "SSN"),
    ("patient_ssn: 123 45 6789", "123 45 6789", "SSN"),
    ("social security number: 078-05-1120", "078-05-1120", "SSN"),
    ("MRN: 00123456", "00123456", "MRN"),
    ("mrn=A1234567", "A1234567", "MRN"),
    ('{"mrn": "MR-7788123"}', "7788123", "MRN"),
    ("medical record number 7788123", "7788123", "MRN"),
    ("patient_id=99812", "99812", "MRN"),
    ("DOB: 1980-01-02", "1980-01-02", "DOB"),
    ("date of birth 01/02/1980", "01/02/1980", "DOB"),
    ('"birthDate": "1975-05-03"', "1975-05-03", "DOB"),
    ("patient_dob=12-31-1969", "12-31-1969", "DOB"),
    ("born on March 3, 1975", "March 3, 1975", "DOB"),
    ("Patient: Jane Doe", "Jane Doe", "NAME"),
    ('patient_name = "jane doe"', "jane doe", "NAME"),
    ("name: Jane Q. Doe", "Jane Q. Doe", "NAME"),
    ('{"name": "Maria Garcia", "id": 3}', "Maria Garcia", "NAME"),
    ("last_name='Okafor'", "Okafor", "NAME"),
    ("Patient.name = 'Wei Zhang'", "Wei Zhang", "NAME"),
    ('"name": [{"family": "Smith", "given": ["John", "Quincy"]}]', "Smith", "NAME"),
    ('"name": [{"family": "Smith", "given": ["John", "Quincy"]}]', "Quincy", "NAME"),
    ('HumanName(family="Nakamura", given=["Yuki"])', "Yuki", "NAME"),
    ("call (555) 123-4567 now", "123-4567", "PHONE"),
    ("phone 555.123.4567", "555.123.4567", "PHONE"),
    ("+1 555-123-4567", "555-123-4567", "PHONE"),
    ("phone=5551234567", "5551234567", "PHONE"),
    ("+44 20 7946 0958", "7946 0958", "PHONE"),
    ("mail jane.doe@example.com please", "jane.doe@example.com", "EMAIL"),
    ("lives at 123 Main Street, Apt 4B", "123 Main Street", "ADDRESS"),
    ("4821 N Elm Ave", "4821 N Elm Ave", "ADDRESS"),
    ('address: "77 Harbor View Rd, Boston MA"', "77 Harbor View Rd", "ADDRESS"),
    ("member_id: XJH123456789", "XJH123456789", "INSURANCE_ID"),
    ("insurance id W123456789", "W123456789", "INSURANCE_ID"),
    ("medicaid_number=NY12345678", "NY12345678", "INSURANCE_ID"),
    ("zip=02139", "02139", "ADDRESS"),
    ('"postalCode": "02139-4307"', "02139-4307", "ADDRESS"),
    ("spoke with Mrs. Okafor about the results", "Okafor", "NAME"),
    ("Mr John Smith called", "John Smith", "NAME"),
    ("MBI 1EG4-TE5-MK73 on the claim", "1EG4-TE5-MK73", "INSURANCE_ID"),
    ("Authorization: Bearer abcdef1234567890xyz", "abcdef1234567890xyz", "TOKEN"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijk", "eyJhbGciOiJIUzI1NiJ9", "TOKEN"),
    ("SLACK_BOT_TOKEN=xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij", "TOKEN"),
    ("ghp_0123456789abcdefghijklmnopqrstuvwxyz", "ghp_0123456789abcdefghij", "TOKEN"),
    ("password=hunter2", "hunter2", "SECRET"),
    ("db?user=a&password=Tr0ub4dor&x=1", "Tr0ub4dor", "SECRET"),
    ('"password": "s3cr3t!"', "s3cr3t!", "SECRET"),
    ("api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "4eC39HqLyjWDarjtT1zdp7dc", "TOKEN"),
    ("client_secret = 'Zq9_xT4vLm2'", "Zq9_xT4vLm2", "SECRET"),
    ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", "SECRET"),
    ("key id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "AWS_KEY"),
    ("postgres://svc:pa55word@db:5432/ehr", "pa55word", "SECRET"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA7", "PRIVATE_KEY"),
]


@pytest.mark.parametrize(("text", "secret", "kind"), MUST_REDACT)
def test_sensitive_values_are_replaced_by_typed_placeholders(text: str, secret: str, kind: str) -> None:
    out = redact(text)
    assert secret not in out, out
    assert f"[REDACTED:{kind}]" in out, out


MUST_KEEP = [
    "2024-01-15T10:30:00.123Z INFO request took 12.5ms",
    "version 1.2.3 released; pinned fastapi==0.111.0",
    "commit 9f1c2e7a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e merged",
    "listening on 192.168.1.100:8080",
    "def fetch(patient: Patient) -> Bundle:",
    "patient = Patient(name=name, birth_date=dob)",
    "name: ehr-api",
    "name: Deploy",
    "    name: Build and test",
    "password = get_password()",
    "connect(password=db_password, user=db_user)",
    "token = settings.slack_token",
    "secret_key = os.environ['SECRET_KEY']",
    "password: ${DB_PASSWORD}",
    "log.info('patient %s loaded', patient.id)",
    "if dob is None: raise ValueError('dob required')",
    "mrn = record.mrn",
    "SELECT name, dob FROM patients WHERE mrn = ?",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "range(1, 10) and 3.14159 and 1e-9",
    "@app.route('/patients/<int:pid>')",
    "see RFC 7231 section 6.5.1 and ISO 8601",
    "ports: [8080, 8443] replicas: 3",
    "Risk: high (72)",
    "Regulations: HIPAA 164.312(b), IEC 62304",
    "zip_file = archive.zip",
    "errors=2 warnings=14 in 3 files",
]


@pytest.mark.parametrize("text", MUST_KEEP)
def test_ordinary_code_and_log_text_survive(text: str) -> None:
    assert redact(text) == text


def test_a_whole_log_line_keeps_everything_but_the_phi() -> None:
    line = "2026-11-25T09:12:00Z level=info msg=admitted patient_name='Ana Silva' mrn=77812345 ward=4B took=12ms"
    assert redact(line) == (
        "2026-11-25T09:12:00Z level=info msg=admitted patient_name='[REDACTED:NAME]' mrn=[REDACTED:MRN] ward=4B took=12ms"
    )


@pytest.mark.parametrize(("text", "_secret", "_kind"), MUST_REDACT)
def test_redaction_is_idempotent(text: str, _secret: str, _kind: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_the_whole_corpus_is_idempotent_when_joined() -> None:
    corpus = "\n".join([t for t, _, _ in MUST_REDACT] + MUST_KEEP)
    once = redact(corpus)
    assert redact(once) == once
    for keep in MUST_KEEP:
        assert keep in once


def test_empty_and_non_sensitive_text_is_returned_unchanged() -> None:
    assert redact("") == ""
    assert redact("hello world") == "hello world"


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,
        "name: " * 150_000,
        "1-" * 500_000,
        "password=" + "x" * 1_000_000,
        "Patient: " + "Ab " * 300_000,
        "-----BEGIN PRIVATE KEY-----" + "A" * 1_000_000,
        "@" * 1_000_000,
    ],
    ids=["letters", "labels", "digit-dashes", "long-secret", "many-words", "unterminated-key", "ats"],
)
def test_a_one_megabyte_line_is_redacted_in_linear_time(hostile: str) -> None:
    # A generous bound: a backtracking engine takes minutes on these; RE2 takes milliseconds.
    started = time.perf_counter()
    redact(hostile)
    assert time.perf_counter() - started < 5.0


def test_redact_obj_replaces_values_under_phi_keys_and_redacts_other_strings() -> None:
    record = {
        "resourceType": "Patient",
        "name": [{"family": "Smith", "given": ["John"]}],
        "birthDate": "1970-01-01",
        "telecom": [{"system": "phone", "value": "555-123-4567"}],
        "patient_ssn": "123-45-6789",
        "note": "MRN: 5566778 seen today",
        "count": 3,
        "active": True,
        "email": None,
    }
    out = redact_obj(record)
    assert out == {
        "resourceType": "Patient",
        "name": "[REDACTED:NAME]",
        "birthDate": "[REDACTED:DOB]",
        "telecom": [{"system": "phone", "value": "[REDACTED:PHONE]"}],
        "patient_ssn": "[REDACTED:SSN]",
        "note": "MRN: [REDACTED:MRN] seen today",
        "count": 3,
        "active": True,
        "email": None,
    }
    assert record["birthDate"] == "1970-01-01"  # the input is not modified
    assert redact_obj(out) == out


def test_redact_obj_keeps_finding_like_records_intact() -> None:
    finding = {"file": "svc/api.py", "line": 42, "rule": "PHI-LOG-001", "severity": "high", "category": "phi-exposure-log"}
    assert redact_obj(finding) == finding


def test_redact_obj_keeps_tuples_and_scalars() -> None:
    assert redact_obj(("ssn 123-45-6789", 1, 2.5, None)) == ("ssn [REDACTED:SSN]", 1, 2.5, None)


@pytest.mark.parametrize(
    ("key", "kind"),
    [("birthDate", "DOB"), ("patient_ssn", "SSN"), ("Date-Of-Birth", "DOB"), ("memberId", "INSURANCE_ID"),
     ("patientName", "NAME"), ("password", "SECRET"), ("service", None), ("version", None), ("patient", None)],
)
def test_phi_keys_are_recognised_in_any_spelling(key: str, kind: str | None) -> None:
    assert is_phi_key(key) == kind


@pytest.mark.parametrize(
    "code",
    [
        "secret: SecretStr | None = Field(None, validation_alias='WEBHOOK_SECRET')",
        "def sign(secret: SecretStr, body: bytes) -> str:",
        'query = "SELECT p FROM Patient p WHERE p.lastName = \'" + lastName + "\'"',
        'url = f"postgres://{user}:{password}@{host}/ehr"',
        'SAFE = r"vault:|secret://|arn:aws:|ENC\\(|@Value"',
        "apiKey := os.Getenv(\"API_KEY\")",
    ],
)
def test_code_that_mentions_secrets_or_names_is_left_alone(code: str) -> None:
    assert redact(code) == code


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('"infra/main.tf::  access_key = \\"wJalrXUtnFEMI0K7MDENG\\""', "wJalrXUtnFEMI0K7MDENG"),
        ('apiKey := "a8f5f167f44f4964e6c998dee827110c"', "a8f5f167f44f4964e6c998dee827110c"),
    ],
)
def test_secrets_inside_escaped_or_go_style_assignments_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and "[REDACTED:SECRET]" in out


def test_a_private_key_inside_a_json_string_is_redacted_whole() -> None:
    out = redact('{"tls_key": "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBase64Body\\nMore==\\n"}')
    assert out == '{"tls_key": "[REDACTED:PRIVATE_KEY]"}'


@pytest.mark.parametrize("text", [t for t, _, _ in MUST_REDACT] + MUST_KEEP)
def test_short_and_long_texts_are_redacted_alike(text: str) -> None:
    # Short texts go through one RE2::Set pass that picks the patterns to run; long ones through
    # keyword prefilters. Both must give the same answer.
    padding = "\n" + "plain words only " * 300
    assert len(text + padding) > 4096
    assert redact(text + padding) == redact(text) + padding


def test_random_mixtures_of_labels_values_and_placeholders_redact_idempotently() -> None:
    import random

    rng = random.Random(20261125)
    tokens = [
        "name", ":", "=", " ", "Jane", "Doe", "patient", "MRN", "123-45-6789", "1980-01-02", "dob", "ssn", '"', "'",
        "[", "]", "REDACTED", "555", "-", "1234", "@", "example.com", "password", "token", "Bearer", "abc123def456ghi",
        "\n", "Mr.", "Smith", "family", "given", "St", "Main", "42", "zip", "02139", "member_id", "X12345", "{", "}",
        ",", "key", "://", "u", "p4ss", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "\\",
        "\\n", "AKIAIOSFODNN7EXAMPLE", "Ave", "7", "(", ")", "+", "$", "address", "phone", "Okafor",
    ]
    for _ in range(3000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randrange(1, 25)))
        once = redact(text)
        assert redact(once) == once, text
