"""Clinical safety findings: changed dosing, conversion, infusion, alarm and control logic; not tests, docs or renames."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.review import safety
from assistant.review._structure import udiff
from assistant.review.engine import review


def findings(diff: str):
    return [f for f in review(parse_diff(diff), rules=safety.RULES).findings if f.category == "clinical-safety"]


def test_changed_dose_limit_is_reported_on_the_changed_constant():
    diff = udiff(
        "cds/dosing/acetaminophen.py",
        ' SINGLE_DOSE_MG_PER_KG = Decimal("15")',
        '-MAX_DAILY_MG_PER_KG = Decimal("75")',
        '+MAX_DAILY_MG_PER_KG = Decimal("90")',
        ' ADULT_MAX_DAILY_MG = Decimal("4000")',
        start=4,
    )
    [f] = findings(diff)
    assert (f.line, f.rule) == (5, "SAFE-001")
    assert "MAX_DAILY_MG_PER_KG" in f.message and "class C" in f.message
    assert "IEC 62304 §5" in f.regulations


def test_alarm_limit_in_yaml_is_clinical_through_its_parent_keys():
    diff = udiff("monitoring/config/alarm_limits.yaml", " adult:", "   spo2:", "-    low: 90", "+    low: 85", "   resp_rate:")
    assert [f.line for f in findings(diff)] == [3]


def test_early_return_in_alarm_dispatch_is_alarm_suppression():
    diff = udiff(
        "internal/alarms/dispatch.go",
        " func (d *Dispatcher) Raise(ctx context.Context, a Alarm) error {",
        "+\tif a.Patient.InTransport {",
        "+\t\treturn nil // transport monitors beep locally",
        "+\t}",
        " \tif err := d.Board.Show(ctx, a); err != nil {",
    )
    [f] = findings(diff)
    assert f.line in (2, 3) and "alarm suppression" in f.message


def test_formula_change_in_an_infusion_calculator_and_gains_of_a_control_loop():
    infusion = udiff(
        "pump-core/src/main/java/org/mercy/pump/InfusionRate.java",
        "     public static double mlPerHour(double doseMcgPerKgMin, double weightKg, double concMgPerMl) {",
        "-        double mcgPerHour = doseMcgPerKgMin * weightKg * 60.0;",
        "-        return mcgPerHour / (concMgPerMl * 1000.0);",
        "+        double mgPerHour = doseMcgPerKgMin * weightKg * 60.0 / 1000.0;",
        "+        return mgPerHour * concMgPerMl;",
        "     }",
    )
    loop = udiff("firmware/control/loop.py", " TARGET_MG_DL = 110.0", "-KP = 0.0125", "+KP = 0.02", " KI = 0.0004")
    assert [f.line for f in findings(infusion)] == [2]
    assert [f.line for f in findings(loop)] == [2]


def test_tests_docs_renames_and_imports_are_not_clinical_changes():
    quiet = [
        udiff("tests/cds/dosing/test_acetaminophen.py", " def test_single_dose():",
              '+    assert single_dose_mg(Decimal("10.9")) == Decimal("163")'),
        udiff("docs/clinical/alarm-limits.md", " | parameter | adult low |", "-| SpO2 | 90 |", "+| SpO2 | 88 |"),
        udiff("cds/dosing/weight.py", "-def calc(weight_kg, mg_per_kg):", "+def weight_based_dose_mg(weight_kg, mg_per_kg):",
              "     return weight_kg * mg_per_kg"),
        udiff("monitoring/vitals/trend.py", " from statistics import mean", "-from monitoring.units import Reading",
              "+from monitoring.vitals.units import Reading"),
        udiff("cds/dosing/weight.py", " def dose(weight_kg):", '+    log.info("dose requested for %s kg", weight_kg)'),
    ]
    for diff in quiet:
        assert findings(diff) == [], diff


def test_non_clinical_thresholds_are_not_clinical():
    quiet = [
        udiff("api/throttle.py", "-RATE_LIMIT_PER_MINUTE = 100", "+RATE_LIMIT_PER_MINUTE = 300"),
        udiff("ops/monitoring/alerts.yaml", "   - alert: HighErrorRate",
              '-    expr: rate(http_requests_total{status=~"5.."}[5m]) > 0.05',
              '+    expr: rate(http_requests_total{status=~"5.."}[5m]) > 0.02'),
        udiff("infra/alarms.tf", ' resource "aws_cloudwatch_metric_alarm" "cpu" {', "-  threshold = 80", "+  threshold = 90"),
    ]
    for diff in quiet:
        assert findings(diff) == [], diff


def test_c_defines_and_json_dose_tables_are_clinical_but_rewrapped_code_is_not():
    define = udiff("firmware/pump/limits.h", "-#define MAX_BOLUS_UNITS 10", "+#define MAX_BOLUS_UNITS 15")
    table = udiff("cds/tables/pediatric.json", ' "acetaminophen": {', '-  "max_daily_mg_per_kg": 75,',
                  '+  "max_daily_mg_per_kg": 90,')
    rewrapped = udiff(
        "cds/dosing/acetaminophen.py",
        "-    return min(weight_kg * SINGLE_DOSE_MG_PER_KG, ADULT_SINGLE_MAX_MG)",
        "+    return min(",
        "+        weight_kg * SINGLE_DOSE_MG_PER_KG,",
        "+        ADULT_SINGLE_MAX_MG,",
        "+    )",
    )
    assert [f.line for f in findings(define)] == [1]
    assert [f.line for f in findings(table)] == [2]
    assert findings(rewrapped) == []


def test_early_warning_score_bands_are_clinical_but_chart_styling_is_not():
    band = udiff("ews/news2.py", "     if rr <= 11:", "         return 1", "-    if rr <= 20:", "+    if rr <= 22:", "         return 0")
    styling = udiff("web/src/vitals/VitalsChart.tsx", '-const COLORS = { hr: "#d33", spo2: "#33d" };',
                    '+const COLORS = { hr: "#e44", spo2: "#44e" };', "-export const CHART_HEIGHT = 240;",
                    "+export const CHART_HEIGHT = 320;")
    assert [f.line for f in findings(band)] == [3]
    assert findings(styling) == []


def test_learning_rates_and_infrastructure_alarms_are_not_clinical():
    quiet = [
        udiff("ml/train.py", "-ML_LEARNING_RATE = 0.01", "+ML_LEARNING_RATE = 0.001"),
        udiff("ops/alarms.py", ' cw.put_metric_alarm(AlarmName="api-cpu",', "-    Threshold=80,", "+    Threshold=90,"),
    ]
    for diff in quiet:
        assert findings(diff) == [], diff


def test_changing_the_rounding_function_of_a_dose_is_a_change():
    diff = udiff("libs/dosing/src/round.ts", " export function roundDoseMl(volumeMl: number): number {",
                 "-  return Math.round(volumeMl * 10) / 10;", "+  return Math.ceil(volumeMl * 10) / 10;", " }")
    assert [f.line for f in findings(diff)] == [2]


def test_plumbing_in_a_clinical_module_is_not_a_clinical_change():
    quiet = [
        udiff("pump/server.go", "-const listenPort = 8080", "+const listenPort = 8443"),
        udiff("cds/dosing/service.py", " def dose_for(user, order):", "+    if user.role == \"guest\":", "+        raise PermissionError"),
    ]
    for diff in quiet:
        assert findings(diff) == [], diff


def test_ui_labels_are_not_clinical_logic():
    diff = udiff("web/src/components/DoseForm.tsx", " export function DoseForm() {",
                 '-  return <label htmlFor="dose">Dose (mg)</label>;', '+  return <label htmlFor="dose">Dose in milligrams</label>;')
    assert findings(diff) == []
