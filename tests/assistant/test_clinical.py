"""The clinical-safety validator: what changed, IEC 62304 class with reasons, and whether tests came along."""

from __future__ import annotations

import io

from assistant.clinical import assess, combine, scan_file
from assistant.diffs import iter_file_diffs, parse_diff
from assistant.review._structure import udiff

DOSE_CHANGE = udiff(
    "cds/dosing/acetaminophen.py",
    ' SINGLE_DOSE_MG_PER_KG = Decimal("15")',
    '-MAX_DAILY_MG_PER_KG = Decimal("75")',
    '+MAX_DAILY_MG_PER_KG = Decimal("90")',
    start=4,
)
DOSE_TESTS = udiff(
    "tests/cds/dosing/test_acetaminophen.py",
    " from cds.dosing.acetaminophen import max_daily_mg",
    "+def test_max_daily_is_capped():",
    '+    assert max_daily_mg(Decimal("80")) == Decimal("4000")',
)


def test_a_dose_limit_change_without_tests_is_class_c_and_says_why():
    verdict = assess(parse_diff(DOSE_CHANGE))
    assert verdict.safety_critical is True
    assert verdict.iec62304_class == "C"
    assert verdict.tests_changed is False
    assert "acetaminophen" in verdict.touched_units
    assert any("cds/dosing/acetaminophen.py:5" in n and "dose" in n and "MAX_DAILY_MG_PER_KG" in n for n in verdict.notes)
    assert any("no tests" in n for n in verdict.notes)


def test_tests_touching_the_same_module_count_as_tests_changed():
    verdict = assess(parse_diff(DOSE_CHANGE + DOSE_TESTS))
    assert verdict.iec62304_class == "C" and verdict.tests_changed is True


def test_a_decision_rule_threshold_is_class_b():
    diff = udiff("cds/sepsis/qsofa.py", "-QSOFA_ESCALATION_SCORE = 2", "+QSOFA_ESCALATION_SCORE = 3")
    verdict = assess(parse_diff(diff))
    assert verdict.safety_critical and verdict.iec62304_class == "B"
    assert any("decision rule" in n for n in verdict.notes)


def test_alarm_suppression_is_class_c():
    diff = udiff("bedside/alarms/evaluator.py", "     def evaluate(self, patient, reading):",
                 "+        if patient.comfort_care_only:", "+            return []", "         events = []")
    verdict = assess(parse_diff(diff))
    assert verdict.iec62304_class == "C"
    assert any("alarm" in n for n in verdict.notes)


def test_non_clinical_change_is_class_a_and_not_safety_critical():
    diff = udiff("portal/branding.py", '-LOGO = "old.png"', '+LOGO = "new.png"')
    verdict = assess(parse_diff(diff))
    assert (verdict.safety_critical, verdict.iec62304_class, verdict.notes) == (False, "A", [])


def test_test_only_change_is_not_safety_critical_but_reports_tests():
    verdict = assess(parse_diff(DOSE_TESTS))
    assert verdict.safety_critical is False and verdict.iec62304_class == "A"
    assert verdict.tests_changed is True


def test_scans_keep_no_line_text_and_streaming_gives_the_same_verdict():
    files = parse_diff(DOSE_CHANGE + DOSE_TESTS)
    scans = [scan_file(f) for f in files]
    assert 'Decimal("90")' not in repr(scans)
    streamed = combine(scan_file(f) for f in iter_file_diffs(io.BytesIO((DOSE_CHANGE + DOSE_TESTS).encode())))
    assert streamed == assess(files)


def test_reviewer_findings_outside_the_scans_still_mark_the_change_clinical():
    from assistant.domain import Finding

    extra = Finding(category="clinical-safety", severity="high", file="cds/x.py", line=3, rule="SAFE-999",
                    message="m", regulations=[])
    verdict = combine([], [extra])
    assert verdict.safety_critical and verdict.iec62304_class == "B"
    assert any("cds/x.py:3" in n for n in verdict.notes)


# --- the file-level gate (one RE2 Set pass per large file) must answer as the per-hunk word split does ---

import random  # noqa: E402

import pytest  # noqa: E402

from assistant import clinical  # noqa: E402
from assistant.review._structure import words_of  # noqa: E402


def _tracked() -> set[str]:
    return set(clinical._GATE_WORDS) | {p for seqs in clinical._GLUE.values() for seq in seqs for p in seq}


@pytest.mark.parametrize("seed", range(4))
def test_the_gate_set_finds_exactly_the_tracked_words_that_words_of_finds(seed: int) -> None:
    tracked = _tracked()
    pieces = [*sorted(tracked), "X", "_", " ", ".", "(", "2", "Q", "abc", "é", "\n", "-", "MG", "Ml", "TO", "SpO", "fiO"]
    rng = random.Random(seed)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.7 else rng.choice(pieces).upper()
                       for _ in range(rng.randint(1, 12)))
        want = {w for w in words_of(text) if w in tracked}
        if "spo2" in text.lower():
            want.add(clinical._SPO2_ANYWHERE)
        assert clinical._GateSet.words_in(text) == want, text


def test_the_gate_words_cover_every_word_could_be_clinical_asks_about() -> None:
    # If _could_be_clinical starts asking about a word the gate does not track, this fails: add it to _GATE_WORDS.
    rng = random.Random(5)
    vocabulary = sorted(set().union(*(v for v in vars(clinical).values() if isinstance(v, frozenset) and
                                      all(isinstance(w, str) for w in v))))
    tracked = _tracked()
    for _ in range(5000):
        words = set(rng.sample(vocabulary, rng.randint(1, 4)))
        assert clinical._could_be_clinical(words, "") == clinical._could_be_clinical(words & tracked, "")


def _big_file(path: str, lines: list[str]) -> str:
    filler = [f"    total_{i} = sum(item.amount for item in order.items[{i}:])" for i in range(120)]
    return udiff(path, *[f"+{x}" for x in filler + lines])


@pytest.mark.parametrize(
    ("path", "tail"),
    [
        ("services/billing/orders.py", []),  # no clinical word anywhere: the gate answers
        ("services/billing/orders.py", ["    MAX_DAILY_MG_PER_KG = 75"]),  # one dose line at the end
        ("services/monitor/limits.py", ["    heart_rate_limit = 140"]),  # a vital sign and a limit, apart
        ("services/monitor/limits.py", ["    SPO_2 = 88", "    alarm_low = 88"]),  # glued words (spo + 2)
        ("services/tuning.py", ["    kp = 0.4", "    ki = 0.02"]),  # PID gains, in no clinical file
        ("services/units.py", ["    def lbToKg(x):", "        return x * 0.4536"]),  # a unit conversion
    ],
)
def test_a_large_file_scans_the_same_with_and_without_the_gate(monkeypatch: pytest.MonkeyPatch, path: str, tail: list[str]) -> None:
    (file,) = parse_diff(_big_file(path, tail))
    assert len("\n".join(ln.text for h in file.hunks for ln in h.lines)) > clinical._FAST_GATE_MIN_CHARS
    gated = clinical._scan_file(file)
    assert clinical._surely_not_clinical(file, clinical._words(path)) is (not tail)  # only the first one is skipped
    monkeypatch.setattr(clinical, "_FAST_GATE_MIN_CHARS", 10**12)
    assert clinical._scan_file(file) == gated


def test_scanning_the_same_file_twice_reuses_the_answer_and_a_new_file_is_scanned_anew() -> None:
    (file,) = parse_diff(DOSE_CHANGE)
    first = scan_file(file)
    assert scan_file(file) is first
    (again,) = parse_diff(DOSE_CHANGE)
    assert scan_file(again) is not first and scan_file(again) == first


DOCSTRING_ONLY = udiff(
    "cds/dosing/acetaminophen.py",
    " def single_dose_mg(weight_kg: Decimal) -> Decimal:",
    '-    """Single acetaminophen dose in mg."""',
    '+    """Single oral/IV acetaminophen dose in mg, rounded down to a whole mg.',
    "+",
    "+    See CDS-DOSE-014 for the source table (reviewed 2025-09), max 15 mg/kg.",
    '+    """',
    "     return (weight_kg * SINGLE_DOSE_MG_PER_KG).quantize(Decimal(\"1\"), rounding=ROUND_DOWN)",
    start=8,
)


def test_a_docstring_is_documentation_whatever_numbers_it_quotes() -> None:
    assert scan_file(parse_diff(DOSE_CHANGE)[0]).changes  # (the same file's code change is one)
    assert scan_file(parse_diff(DOSE_CHANGE + DOCSTRING_ONLY)[1]).changes == ()


def test_code_after_a_docstring_and_a_triple_quoted_value_stay_code() -> None:
    after = udiff(
        "cds/dosing/acetaminophen.py",
        " def single_dose_mg(weight_kg: Decimal) -> Decimal:",
        '+    """Single oral/IV acetaminophen dose in mg,',
        "+    max 15 mg/kg.",
        '+    """',
        "-    return weight_kg * SINGLE_DOSE_MG_PER_KG",
        "+    return weight_kg * SINGLE_DOSE_MG_PER_KG * 2",
        start=8,
    )
    assert [c.line for c in scan_file(parse_diff(after)[0]).changes] == [12]
    value = udiff(
        "cds/dosing/rules.py",
        ' MAX_DOSE_SQL = """',
        "-    SELECT drug FROM orders WHERE dose_mg > 4000",
        "+    SELECT drug FROM orders WHERE dose_mg > 5000",
        ' """',
        start=3,
    )
    assert scan_file(parse_diff(value)[0]).changes


def _extracted(single: str, per_kg: str) -> str:
    return udiff(
        "packages/cds/src/dosing/acetaminophen.ts",
        " import { Decimal } from 'decimal.js';",
        " ",
        f"+export const MAX_SINGLE_DOSE_MG = new Decimal({single});",
        f"+export const MG_PER_KG = new Decimal({per_kg});",
        "+",
        " /** Single acetaminophen dose in mg for a patient weight in kg. */",
        " export function singleDoseMg(weightKg: Decimal): Decimal {",
        "-  const byWeight = weightKg.mul(15).floor();",
        "-  return Decimal.min(byWeight, new Decimal(1000));",
        "+  const byWeight = weightKg.mul(MG_PER_KG).floor();",
        "+  return Decimal.min(byWeight, MAX_SINGLE_DOSE_MG);",
        " }",
    )


def test_literals_moved_into_decimal_constants_of_the_same_value_change_nothing() -> None:
    assert scan_file(parse_diff(_extracted("1000", "15"))[0]).changes == ()


@pytest.mark.parametrize(("single", "per_kg"), [("1200", "15"), ("1000", "12.5")])
def test_a_decimal_constant_with_another_value_is_a_dose_change(single: str, per_kg: str) -> None:
    assert scan_file(parse_diff(_extracted(single, per_kg))[0]).changes


def _changes(diff: str) -> list[tuple[int, str]]:
    return [(c.line, c.kind) for f in parse_diff(diff) for c in scan_file(f).changes]


@pytest.mark.parametrize(
    ("path", "lines", "line"),
    [
        ("monitoring/config/profiles.yaml", [" profiles:", "   neonatal:", "     apnea:", "-      enabled: true",
                                             "+      enabled: false", "       delay_seconds: 20"], 4),
        ("monitoring/alarms/settings.py", [" SPO2_LOW = 88", "-APNEA_ALARM_ENABLED = True", "+APNEA_ALARM_ENABLED = False"], 2),
        ("monitoring/config/alarms.json", ['   "bradycardia": {', '-    "muted": false,', '+    "muted": true,', '     "low": 50'], 2),
    ],
)
def test_an_alarm_switched_off_by_a_boolean_is_alarm_suppression(path: str, lines: list[str], line: int) -> None:
    assert _changes(udiff(path, *lines)) == [(line, "alarm-suppression")]


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        # switched on, not off
        ("monitoring/config/profiles.yaml", ["   neonatal:", "     apnea:", "-      enabled: false", "+      enabled: true"]),
        # a switch that is not an alarm's, in a clinical file
        ("monitoring/config/profiles.yaml", ["   neonatal:", "     export:", "-      enabled: true", "+      enabled: false"]),
        # an infrastructure alarm
        ("deploy/alerts.yaml", ["   cloudwatch:", "     cpu_alarm:", "-      enabled: true", "+      enabled: false"]),
    ],
)
def test_other_switches_are_not_alarm_suppression(path: str, lines: list[str]) -> None:
    assert _changes(udiff(path, *lines)) == []


def test_a_signature_with_a_clinical_name_is_not_a_value_change() -> None:
    # a notifier that only formats a message: its Go receiver `(n *Notifier)` is a pointer type, not a product
    diff = udiff(
        "internal/alerts/potassium.go",
        "+func (n *Notifier) CriticalPotassium(p Patient, k float64) error {",
        '+\tmsg := map[string]string{"text": fmt.Sprintf("Critical K+ %.1f for %s", k, p.Name)}',
        "+\treturn n.post(msg)",
        "+}",
        start=10,
    )
    assert _changes(diff) == []
    # a default dose in a signature is a value
    assert _changes(udiff("cds/dosing/peds.py", "+def dose_for(weight_kg: float, mg_per_kg: float = 15) -> float:")) == [
        (1, "dose")
    ]


def test_doses_counted_as_stock_are_not_dose_logic() -> None:
    query = ('+\trows, err := s.pool.Query(ctx, "SELECT lot_number, doses_left FROM vaccine_lots WHERE clinic_id = $1 '
             'AND expires_on > now()", clinicID)')
    assert _changes(udiff("internal/lots/store.go", "+func (s *Store) ActiveLots(ctx context.Context, clinicID string) ([]Lot, error) {",
                          query, "+\treturn scanLots(rows)", "+}")) == []
    assert _changes(udiff("pharmacy/stock.py", "-    reorder = doses_remaining < 50", "+    reorder = doses_remaining < 40")) == []
    # a dose beside the stock figure is still a dose
    assert _changes(udiff("pharmacy/dispense.py", "-    if doses_left < 1 or dose_mg > 500:", "+    if doses_left < 1 or dose_mg > 800:")) == [
        (1, "dose")
    ]


def test_clinical_logic_replaced_by_a_comment_is_a_change_on_the_comment() -> None:
    diff = udiff(
        "src/Aspen.Glucose/GlucoseAlerts.cs",
        "     public static Alert? Evaluate(double mgDl, bool onInsulinDrip)",
        "     {",
        "         if (mgDl >= 400) return Alert.CriticalHigh;",
        "-        if (mgDl < 70) return Alert.Hypoglycemia;",
        "+        // low glucose is alarmed by the CGM app itself",
        "         if (onInsulinDrip && mgDl < 100) return Alert.DripReview;",
    )
    assert _changes(diff) == [(4, "dose")]


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        # limits moved to another module and imported back: an import, not a comment, stands in their place
        ("dosing/acetaminophen.py", ["-MAX_DAILY_ACETAMINOPHEN_MG = 4000",
                                     "+from dosing.limits import MAX_DAILY_ACETAMINOPHEN_MG", " def daily_ok(total_mg):"]),
        # non-clinical code in a clinical file
        ("dosing/client.py", ["-    retries = 3", "+    # the HTTP client retries by itself", " def fetch(order_id):"]),
        # moved down the hunk, with a comment where it was
        ("dosing/limits.py", ["-MAX_DAILY_MG = 4000", "+# limits", " SINGLE_MG = 1000", "+MAX_DAILY_MG = 4000"]),
        # blank lines only, no comment: a plain deletion (reported nowhere: no added line carries it)
        ("dosing/limits.py", ["-MAX_DAILY_MG = 4000", "+", " SINGLE_MG = 1000"]),
    ],
)
def test_a_comment_in_place_of_non_clinical_or_moved_code_is_no_change(path: str, lines: list[str]) -> None:
    assert _changes(udiff(path, *lines)) == []
