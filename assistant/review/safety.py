"""Clinical safety: changes to dosing, unit conversion, infusion, alarm and device-control logic.

The finding is raised on the changed line so the change gets clinical review
and tests; it is not a judgement that the new value is wrong. What counts as
a clinical change (and what does not: tests, docs, imports, logging, pure
renames and moves) is decided once, in `assistant.clinical`, which also gives
the IEC 62304 class; this rule reports its changed lines as findings.
"""

from __future__ import annotations

from collections.abc import Iterator

from assistant.clinical import KIND_CLASS, KIND_TEXT, scan_file
from assistant.review._structure import udiff
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext

REGULATIONS = ("IEC 62304 §5", "IEC 62304 §8", "21 CFR 820.30")


def _clinical_changes(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    for change in scan_file(ctx.file).changes:
        what = f" `{change.symbol}`" if change.symbol else ""
        yield Hit(
            change.line,
            f"This changes safety-critical clinical logic ({KIND_TEXT[change.kind]}{what}; IEC 62304 class "
            f"{KIND_CLASS[change.kind]}). Have it reviewed by a clinical safety officer, record the rationale and "
            "hazard analysis, and add or update tests that pin the new behaviour (boundaries included) before release.",
        )


_KEYWORDS = (
    "dose", "dosing", "dosage", "mg", "mcg", "ml", "kg", "insulin", "basal", "bolus", "titrat", "infus", "pump",
    "drip", "alarm", "spo2", "systolic", "diastolic", "brady", "tachy", "apnea", "vital", "ventilat", "peep",
    "fio2", "firmware", "loop", "cds", "sepsis", "news2", "mews", "triage", "glucose", "heparin", "mmol",
    "nomogram", "telemetry", "potassium", "sodium", "creatinine", "egfr", "inr", "lactate", "troponin", "qsofa",
    "sofa", "pews", "early_warning", "earlywarning", "hypoglyc", "hyperglyc", "temperature", "celsius", "fahrenheit",
    "warfarin", "morphine", "opioid", "vancomycin", "gentamicin", "acetaminophen", "paracetamol", "ibuprofen",
    "dextrose", "meq", "tidal", "setpoint", "occlusion", "vtbi", "mmhg", "bpm", "heart", "resp",
    "bilirubin", "phototherapy", "transfus", "hgb", "hemoglobin", "qtc", "crcl", "platelet", "neutrophil", "aptt",
    "arterial", "hypotens", "hypertens", "tachypn", "bradypn", "hypotherm", "hypertherm", "fever",
    "kp =", "kp:", "kp=", "ki =", "ki:", "kd =", "kd:",  # PID gains
    "mme",
)

_CLINICAL_CHANGE = Rule(
    id="SAFE-001",
    category="clinical-safety",
    severity="high",
    message=(
        "This changes safety-critical clinical logic (dosing, unit conversion, infusion, alarms or device control). "
        "Have it clinically reviewed and add tests that pin the new behaviour."
    ),
    regulations=REGULATIONS,
    keywords=_KEYWORDS,
    check=_clinical_changes,
    examples=(
        udiff("cds/dosing/acetaminophen.py", ' SINGLE_DOSE_MG_PER_KG = Decimal("15")',
              '-MAX_DAILY_MG_PER_KG = Decimal("75")', '+MAX_DAILY_MG_PER_KG = Decimal("90")',
              ' ADULT_MAX_DAILY_MG = Decimal("4000")'),
        udiff("monitoring/config/alarm_limits.yaml", " adult:", "   spo2:", "-    low: 90", "+    low: 85", "   resp_rate:"),
        udiff("internal/alarms/dispatch.go", " func (d *Dispatcher) Raise(ctx context.Context, a Alarm) error {",
              "+\tif a.Patient.Muted {", "+\t\treturn nil", "+\t}", " \treturn d.Board.Show(ctx, a)"),

        udiff("src/main/java/org/stv/lab/CriticalValues.java", '             case "2823-3": // potassium',
              "-                return r.value() < 2.8 || r.value() > 6.0;", "+                return r.value() < 2.8 || r.value() > 6.5;"),
        udiff("internal/units/weight.go", " func LbToKg(lb float64) float64 {", "-\treturn lb * 0.45359237", "+\treturn lb / 2.2", " }"),
        udiff("cds/src/main/java/org/x/cds/InteractionChecker.java", "         return kb.pairs(meds).stream()",
              "-                .filter(i -> i.severity().compareTo(Severity.MODERATE) >= 0)",
              "+                .filter(i -> i.severity().compareTo(Severity.MAJOR) >= 0)", "                 .map(InteractionAlert::from)"),
        udiff("apps/pharmacy/src/dosing/round.ts", " export function roundDoseMg(doseMg: number): number {",
              "-  // round to the nearest 2.5 mg", "-  return Math.round(doseMg / 2.5) * 2.5;",
              "+  // round to the nearest 5 mg", "+  return Math.round(doseMg / 5) * 5;", " }"),
        udiff("rx/opioids/MmeLimits.java", " public final class MmeLimits {", "-    public static final int DAILY_MME_HARD_STOP = 90;",
              "+    public static final int DAILY_MME_HARD_STOP = 120;", " }"),
        udiff("db/views/sepsis_screen.sql", " SELECT e.encounter_id,",
              "-       CASE WHEN l.lactate_mmol_l >= 2.0 AND v.sbp < 90 THEN 1 ELSE 0 END AS sepsis_flag",
              "+       CASE WHEN l.lactate_mmol_l >= 4.0 AND v.sbp < 90 THEN 1 ELSE 0 END AS sepsis_flag", " FROM encounters e"),
        udiff("apps/peds/src/fluids/maintenance.ts", " export function maintenanceMlPerHour(weightKg: number): number {",
              "   if (weightKg <= 20) return 40 + (weightKg - 10) * 2;", "-  return 60 + (weightKg - 20) * 1;",
              "+  return 60 + (weightKg - 20) * 1.5;", " }"),
        udiff("src/Monitoring/Limits/PediatricHeartRate.cs", "     public static (int Low, int High) ForAgeMonths(int months) => months switch",
              "     {", "-        < 24 => (90, 180),", "+        < 24 => (90, 190),", "         < 120 => (60, 140),"),
        udiff("pumps/program.py", " def pump_rate_ml_h(rate: float) -> float:", "-    return round(rate, 1)", "+    return round(rate)"),
        udiff("monitoring/alarms/AlarmType.java", " public enum AlarmType {", "     ASYSTOLE(Priority.HIGH),",
              "-    APNEA(Priority.HIGH),", "+    APNEA(Priority.MEDIUM),", "     LEAD_OFF(Priority.LOW);"),
        udiff("apcontrol/controller.py", " @dataclass", " class Gains:", "-    kp: float = 0.008", "+    kp: float = 0.012",
              "     ki: float = 0.0004", "     kd: float = 0.05"),
        udiff("monitoring/hemo/HypotensionRule.java", "     public void evaluate(Vitals v) {",
              "-        if (v.meanArterialPressure() < 65) {", "+        if (v.meanArterialPressure() < 60) {",
              '             alerts.raiseAlert(v.patientId(), "MAP_LOW", v.meanArterialPressure());'),
        udiff("internal/neonatal/bilirubin.go", " \tcase hoursOfLife < 72:", "-\t\treturn 17", "+\t\treturn 18", " \tdefault:"),
        udiff("cgm/classify.py", "+HYPO_THRESHOLD_MG_DL = 65", "+", " def classify(glucose_mg_dl):",
              "-    if glucose_mg_dl < 70:", "+    if glucose_mg_dl < HYPO_THRESHOLD_MG_DL:", '         return "hypo"'),
        udiff("config/cds/rules.json", '   "hyperkalemia": {', '-    "when": "potassium > 6.0",', '+    "when": "potassium > 6.5",', "   },"),
        udiff("config/peds/dosing.json", '   "amoxicillin": {', '-    "dose": "80 mg/kg/day",', '+    "dose": "90 mg/kg/day",', "   },"),
        udiff("db/migrations/V120__potassium_rule.sql",
              "+UPDATE cds_rules SET threshold_high = 6.5 WHERE rule_code = 'K_CRITICAL_HIGH';"),
        udiff("cds/dosing/heparin.py", ' def bolus_units(weight_kg):', '-    return round(weight_kg * 80)', '+    return round(weight_kg * Decimal("70"))'),
        udiff("charts/bedside-monitor/values.yaml", " alarms:", "   heartRate:", "-    high: 130", "+    high: 150",
              " resources:", "   limits:", "-    cpu: 500m", "+    cpu: 750m"),
    ),
    counterexamples=(
        udiff("tests/cds/dosing/test_acetaminophen.py", " def test_single_dose():",
              "+    assert single_dose_mg(Decimal(\"10.9\")) == Decimal(\"163\")"),
        udiff("docs/clinical/alarm-limits.md", " | parameter | adult low |", "-| SpO2 | 90 |", "+| SpO2 | 88 |"),
        udiff("cds/dosing/acetaminophen.py", ' SINGLE_DOSE_MG_PER_KG = Decimal("15")',
              '-MAX_DAILY = Decimal("75")', '+MAX_DAILY_MG_PER_KG = Decimal("75")'),
        udiff("monitoring/vitals/trend.py", " from statistics import mean", "-from monitoring.units import Reading",
              "+from monitoring.vitals.units import Reading"),

        udiff("charts/bedside-monitor/values.yaml", "-replicaCount: 2", "+replicaCount: 3", " alarms:", "   heartRate:",
              "     high: 130"),
        udiff("cgm/classify.py", "+HYPO_THRESHOLD_MG_DL = 70", "+", " def classify(glucose_mg_dl):",
              "-    if glucose_mg_dl < 70:", "+    if glucose_mg_dl < HYPO_THRESHOLD_MG_DL:", '         return "hypo"'),
        udiff("deploy/pump-gateway/values.yaml", " pumpFirmware:", "   image: registry.x.org/pump-gateway", "-  rolloutPercent: 10",
              "+  rolloutPercent: 25"),
        udiff("api/config/limits.py", "-RATE_LIMIT_PER_MINUTE = 600", "+RATE_LIMIT_PER_MINUTE = 300", " BURST = 50"),
        udiff("web/src/controllers/checkout.py", " class CheckoutController:", "-    retries = 2", "+    retries = 3",
              "     timeout_s = 10"),
        udiff("db/migrations/V140__heparin_label.sql", "+-- display name of the heparin vial",
              "+UPDATE drug_catalog SET display_name = 'Heparin Sodium 5,000 units/mL' WHERE ndc = '63323-0047-01';"),
    ),
)

RULES: tuple[Rule, ...] = (_CLINICAL_CHANGE,)
