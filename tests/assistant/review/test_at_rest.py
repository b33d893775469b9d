"""Unencrypted PHI at rest: plaintext columns, encryption off or removed, unencrypted storage, PHI files."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.review import at_rest
from assistant.review._structure import udiff
from assistant.review.engine import review


def findings(diff: str):
    return [f for f in review(parse_diff(diff), rules=at_rest.RULES).findings if f.category == "unencrypted-phi-storage"]


def test_plaintext_ssn_column_is_reported_but_hashes_and_scheduling_columns_are_not():
    diff = udiff(
        "db/migrations/20240611_ids.sql",
        "+-- identifiers for eligibility",
        "+ALTER TABLE patients ADD COLUMN ssn VARCHAR(11);",
        "+ALTER TABLE patients ADD COLUMN ssn_sha256 CHAR(64);",
        "+ALTER TABLE schedule_slots ADD COLUMN capacity SMALLINT NOT NULL DEFAULT 1;",
    )
    [f] = findings(diff)
    assert (f.line, f.rule) == (2, "ENC-001")
    assert "HIPAA 164.312(a)(2)(iv)" in f.regulations


def test_orm_columns_for_diagnosis_and_encrypted_field_types():
    django = udiff("ehr/models.py", " class Encounter(models.Model):", "+    diagnosis = models.TextField(blank=True)")
    encrypted = udiff("ehr/models.py", " class Patient(models.Model):", "+    ssn = EncryptedCharField(max_length=11)")
    ef = udiff("src/Migrations/AddDx.cs", "             migrationBuilder.AddColumn<string>(",
               '+                name: "PrimaryDiagnosis",', '                 table: "Encounters",')
    assert [f.line for f in findings(django)] == [2]
    assert findings(encrypted) == []
    assert findings(ef)


def test_encryption_switched_off_flat_and_nested():
    assert [f.rule for f in findings(udiff("infra/rds.tf", "-  storage_encrypted = true", "+  storage_encrypted = false"))] == ["ENC-002"]
    nested = udiff("infra/search.tf", ' resource "aws_opensearch_domain" "notes" {', "   encrypt_at_rest {",
                   "-    enabled = true", "+    enabled = false", "   }")
    assert [f.line for f in findings(nested)] == [3]
    assert findings(udiff("infra/rds.tf", "+  storage_encrypted = true")) == []


def test_new_bucket_without_encryption_configuration_is_reported_on_the_resource():
    diff = udiff(
        "infra/storage.tf",
        " }",
        "+",
        '+resource "aws_s3_bucket" "patient_exports" {',
        '+  bucket = "stvincent-patient-exports-prod"',
        "+}",
    )
    [f] = findings(diff)
    assert f.line == 3 and "aws_s3_bucket_server_side_encryption_configuration" in f.message


def test_bucket_with_its_encryption_resource_or_holding_static_assets_is_not_reported():
    encrypted = udiff(
        "infra/discharge.tf",
        '+resource "aws_s3_bucket" "discharge" {', '+  bucket = "discharge"', "+}",
        '+resource "aws_s3_bucket_server_side_encryption_configuration" "discharge" {',
        "+  bucket = aws_s3_bucket.discharge.id", "+  rule {", "+    apply_server_side_encryption_by_default {",
        '+      sse_algorithm = "aws:kms"', "+    }", "+  }", "+}",
    )
    assets = udiff("infra/web.tf", '+resource "aws_s3_bucket" "web_assets" {', '+  bucket = "portal-static-assets"', "+}")
    assert findings(encrypted) == [] and findings(assets) == []


def test_database_without_storage_encryption_but_not_a_replica():
    bare = udiff("infra/db.tf", '+resource "aws_rds_cluster" "encounters" {', '+  engine = "aurora-postgresql"', "+}")
    replica = udiff("infra/db.tf", '+resource "aws_db_instance" "read" {', "+  replicate_source_db = aws_db_instance.main.id", "+}")
    assert [f.line for f in findings(bare)] == [1]
    assert findings(replica) == []


def test_patient_record_written_to_disk_in_the_clear():
    java = udiff(
        "sync/SnapshotWriter.java",
        "     public void write(Patient patient) throws IOException {",
        '+        Path target = snapshotDir.resolve(patient.getId() + ".json");',
        "+        Files.writeString(target, mapper.writeValueAsString(patient));",
        "     }",
    )
    assert [f.line for f in findings(java)] == [3]


def test_encrypted_or_non_phi_files_are_not_reported():
    sealed = udiff("exports/writer.py", " def write_export(records, target, key):",
                   "+    token = Fernet(key).encrypt(json.dumps([r.to_fhir() for r in records]).encode())",
                   "+    target.write_bytes(token)")
    stats = udiff("reports/stats.py", " def write_stats(counts):", '+    with open("/var/reports/daily.json", "w") as fh:',
                  '+        json.dump({"visits": counts.total}, fh)')
    assert findings(sealed) == [] and findings(stats) == []


def test_removed_volume_encryption_is_anchored_on_the_replacing_line():
    removed = udiff("infra/volume.tf", ' resource "aws_ebs_volume" "scans" {', "-  encrypted  = true",
                    "-  kms_key_id = aws_kms_key.scans.arn", "+  size       = 500", " }")
    rotated = udiff("infra/volume.tf", ' resource "aws_ebs_volume" "scans" {', "-  kms_key_id = aws_kms_key.old.arn",
                    "+  kms_key_id = aws_kms_key.scans.arn", " }")
    assert [(f.line, f.rule) for f in findings(removed)] == [(2, "ENC-006")]
    assert findings(rotated) == []


def test_jpa_entity_field_for_hiv_status_is_a_plaintext_column():
    diff = udiff("ehr/Patient.java", '         @Column(name = "hiv_status")', "+        private String hivStatus;")
    assert [f.line for f in findings(diff)] == [2]


def test_encrypting_a_file_after_writing_it_in_the_clear_is_still_reported():
    diff = udiff(
        "jobs/export_registry.py",
        " def export(rows, path):",
        '+    with open(path, "w", newline="") as fh:',
        "+        csv.writer(fh).writerows(rows)",
        '+    subprocess.run(["gpg", "--encrypt", "--recipient", "registry@state.gov", path], check=True)',
    )
    assert [f.line for f in findings(diff)] == [2]


def test_patient_kept_in_browser_local_storage():
    diff = udiff("web/src/state/session.ts", '   sessionStorage.setItem("token", token);', " }",
                 "+export function cachePatient(patient: PatientSummary) {",
                 '+  localStorage.setItem("lastPatient", JSON.stringify(patient));', "+}")
    assert [f.line for f in findings(diff)] == [4]


def test_patient_fields_written_through_an_open_handle_but_not_to_a_response_stream():
    handle = udiff("jobs/extract.py", "     for p in patients:", "+        fh.write(f\"{p.mrn},{p.ssn},{p.date_of_birth}\\n\")")
    stream = udiff("api/views.py", "     for p in patients:", "+        response.write(f\"{p.mrn}\\n\")")
    assert [f.line for f in findings(handle)] == [2]
    assert findings(stream) == []


def test_backup_encryption_step_dropped_from_a_job():
    diff = udiff("k8s/backup/cronjob.yaml", "             - name: backup",
                 '-              args: ["sh", "-c", "pg_dump $DB | gzip | age -r $KEY > /backups/ehr.sql.gz.age"]',
                 '+              args: ["sh", "-c", "pg_dump $DB | gzip > /backups/ehr.sql.gz"]')
    assert [f.rule for f in findings(diff)] == ["ENC-006"]
