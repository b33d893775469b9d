"""Unencrypted PHI at rest: columns, files, exports, volumes and buckets must be encrypted.

Rules here need more than a line: a Terraform resource is unencrypted by
what its body lacks (and by whether a separate encryption resource points at
it), a file write stores PHI only when patient data flows into it, and a
column is sensitive by its name and plaintext by its type. So most are
structural; the switches (`storage_encrypted = false`) are line rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from assistant.diffs import DiffLine
from assistant.review import re2fast as re2
from assistant.review._structure import (
    indent_of,
    CODE_LANGUAGES,
    DOC_LANGUAGES,
    SOURCE_LANGUAGES,
    added_normalized,
    anchor_for_removal,
    blocks,
    index_in,
    is_comment,
    nested_switch_off,
    normalized,
    post_lines,
    statement_text,
    udiff,
    words_of,
)
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.vocabulary import split_words

REGULATIONS = ("HIPAA 164.312(a)(2)(iv)", "HIPAA 164.312(e)(2)(ii)")
_COMMENT = r"^\s*(?:#|//|/\*|\*|<!--|--)"

# ---------------------------------------------------------------- ENC-001 plaintext sensitive columns

# Column names (as word sequences) that must never sit in a plaintext column.
_SENSITIVE_TERMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(t.split("_"))
    for t in (
        "ssn", "social_security", "socialsecurity", "national_id", "national_insurance", "tax_id", "taxpayer_id",
        "passport", "drivers_license", "driver_license", "diagnosis", "diagnoses", "dx", "dx_code", "icd10",
        "icd_code", "hiv", "genetic", "genome", "genotype", "psychotherapy", "psych", "substance", "mental_health",
        "sexual", "medicare_number", "medicare_id", "mbi", "medicaid_id", "medicaid_number", "insurance_member_id",
        "member_number", "policy_number", "credit_card", "card_number", "cvv", "bank_account",
    )
)
_SAFE_COLUMN_WORDS = frozenset({
    "hash", "hashed", "digest", "enc", "encrypted", "cipher", "ciphertext", "token", "tokenized", "last4", "last",
    "four", "masked", "mask", "redacted", "id", "ids", "count", "flag", "present", "verified", "type",
    "at", "date", "on", "by", "version", "fingerprint", "hmac", "ref", "blind", "pseudonym", "pseudonymized",
    "salted", "sealed", "system", "systems", "bidx", "hmac", "kek", "dek",
})
_SQL_COLUMN_RE = re2.compile(
    r"""(?i)^\s*(?:ALTER\s+TABLE\s+\S+\s+)?(?:ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?)?["`\[]?(\w+)["`\]]?\s+"""
    r"""(?:VARCHAR2?|N?VARCHAR|N?CHAR|CHARACTER|TEXT|CITEXT|STRING|CLOB|INT|INTEGER|BIGINT|NUMERIC|DECIMAL|DATE|JSONB?)\b"""
)
_ORM_COLUMN_RES = (
    re2.compile(r"^\s*(\w+)\s*=\s*models\.(\w+)\("),  # Django
    re2.compile(r"^\s*(\w+)(?:\s*:\s*Mapped\[[^\]]*\])?\s*=\s*(?:sa\.|db\.|sqlalchemy\.)?(?:Column|mapped_column)\("),
    re2.compile(r"""(?:sa|sqlalchemy)\.Column\(\s*["'](\w+)["']"""),  # Alembic
    re2.compile(r"""AddColumn<\w+\??>\(\s*(?:name:\s*)?"(\w+)\""""),  # EF Core migration
    re2.compile(r"^\s*(\w+)\s*=\s*table\.Column<"),  # EF Core CreateTable
    re2.compile(r"^\s*(\w+)\s*:\s*\{?\s*(?:type:\s*)?(?:DataTypes|Sequelize)\.(?:STRING|TEXT|CHAR)"),  # Sequelize
    re2.compile(r"^\s*(\w+)\s+string\s+`[^`]*(?:gorm|db|bun|pg):\""),  # Go struct tags
    re2.compile(r"^\s*(\w+)\s*:\s*(?:\{\s*type\s*:\s*)?String\b"),  # Mongoose schema
)
_EF_ADD_COLUMN_RE = re2.compile(r"\bAddColumn<\w+\??>\(\s*$|\bAddColumn<\w+\??>\(\s*name:")
_EF_NAME_RE = re2.compile(r"""\bname:\s*"(\w+)\"""")
# Django migration: `migrations.AddField(model_name="member", name="ssn", field=models.CharField(...))`, one
# argument a line; the column is named on the `name=` line
_DJANGO_NAME_RE = re2.compile(r"""^\s*name\s*=\s*["'](\w+)["']""")
_DJANGO_FIELD_OP_RE = re2.compile(r"\bmigrations\.(?:AddField|AlterField)\(")
_JPA_FIELD_RE = re2.compile(r"^\s*(?:private|protected|public)\s+(?:String|Long|Integer|LocalDate|char\[\])\s+(\w+)\s*;")
# Kotlin JPA properties, often constructor parameters with the annotation on the same line
_KT_FIELD_RE = re2.compile(
    r"^\s*(?:@[\w.]+(?:\([^)\n]*\))?\s+)*(?:(?:private|protected|public|internal|override)\s+)*(?:val|var)\s+(\w+)\s*:\s*"
    r"(?:String|Long|Int|LocalDate|CharArray)\??\s*(?:[,=)]|$)"
)
_TS_FIELD_RE = re2.compile(r"^\s*(\w+)[?!]?\s*:\s*string\s*;")
# Rails migrations (`add_column :referrals, :diagnosis_text, :text`, `t.string :ssn` in create_table)
_RAILS_COLUMN_RE = re2.compile(
    r"^\s*(?:add_column\s+:\w+\s*,\s*:(\w+)\s*,\s*:(?:string|text|citext)\b|t\.(?:string|text|citext)\s+:(\w+))"
)
# Prisma schema fields (`ssn String?`)
_PRISMA_FIELD_RE = re2.compile(r"^\s*(\w+)\s+String\??(?:\s|$)")
_ENCRYPTED_COLUMN_RE = re2.compile(
    r"(?i)encrypt|bytea|blob|varbinary|\bbinary\b|\braw\b|pgp_sym|ENCRYPTED\s+WITH|@Convert|ColumnTransformer|"
    r"\bcipher|vault|tokeniz|hash"
)


# identifiers whose own name ends in a word that elsewhere marks a harmless column (`medicare_beneficiary_id` is the MBI,
# not a foreign key): matched on the whole name before the safe words are considered
_IDENTIFIER_TERMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(t.split("_"))
    for t in (
        "medicare_id", "medicare_beneficiary_id", "medicare_beneficiary_identifier", "beneficiary_identifier",
        "medicaid_id", "insurance_member_id", "health_insurance_claim_number", "hicn", "national_id", "tax_id",
        "taxpayer_id", "passport_id",
    )
)


def _sensitive_column(name: str) -> str | None:
    words = split_words(name)
    if words and tuple(words) in _IDENTIFIER_TERMS:
        return "_".join(words)
    if not words or not _SAFE_COLUMN_WORDS.isdisjoint(words[1:] if len(words) > 1 else ()):
        return None
    if words[-1] in _SAFE_COLUMN_WORDS:
        return None
    for term in _SENSITIVE_TERMS:
        k = len(term)
        for i in range(len(words) - k + 1):
            if tuple(words[i:i + k]) == term:
                return "_".join(term)
    return None


def _column_name(ctx: FileContext, post: Sequence[DiffLine], i: int) -> str | None:
    text = post[i].text
    if ctx.language == "sql" or "ALTER TABLE" in text.upper() or "CREATE TABLE" in text.upper():
        m = _SQL_COLUMN_RE.search(text)
        if m:
            return m.group(1)
    for pattern in _ORM_COLUMN_RES:
        m = pattern.search(text)
        if m:
            return m.group(1)
    if _EF_ADD_COLUMN_RE.search(text):
        m = _EF_NAME_RE.search(statement_text(post, i, max_lines=6))
        if m:
            return m.group(1)
    m = _EF_NAME_RE.search(text)
    if m and any("AddColumn<" in p.text for p in post[max(0, i - 3): i]):
        return m.group(1)
    if ctx.language == "ruby" and (":" in text):
        m = _RAILS_COLUMN_RE.search(text)
        if m:
            return m.group(1) or m.group(2)
    if ctx.language is None and ctx.path.endswith(".prisma"):
        m = _PRISMA_FIELD_RE.search(text)
        if m:
            return m.group(1)
    if ctx.language == "python" and "name" in text:
        m = _DJANGO_NAME_RE.search(text)
        if m and any(_DJANGO_FIELD_OP_RE.search(p.text) for p in post[max(0, i - 3): i]):
            return m.group(1)
    if ctx.language == "kotlin" and ("val " in text or "var " in text):
        m = _KT_FIELD_RE.search(text)
        if m:
            above = "\n".join(p.text for p in post[max(0, i - 3): i + 1])
            if re2.search(r"@Column|@Field|@Property", above):
                return m.group(1)
    if ctx.language in ("java", "kotlin", "typescript"):
        m = (_JPA_FIELD_RE if ctx.language != "typescript" else _TS_FIELD_RE).search(text)
        if m:
            above = "\n".join(p.text for p in post[max(0, i - 3): i])
            if re2.search(r"@Column|@Field|@Property|@Prop\(", above):
                return m.group(1)
    return None


_CREATE_TABLE_RE = re2.compile(r"""(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:[\w"`\[\]]+\.)?["`\[]?(\w+)""")
# the free-text columns of a table whose very subject is sensitive (psychotherapy_notes.note_text, hiv_results.body)
_CONTENT_WORDS = frozenset({
    "note", "notes", "text", "body", "content", "narrative", "summary", "details", "answer", "answers", "response",
    "responses", "result", "results", "comment", "comments", "transcript", "assessment", "value",
})


def _sensitive_table_content(post: Sequence[DiffLine], i: int, column: str) -> str | None:
    if _CONTENT_WORDS.isdisjoint(split_words(column)):
        return None
    for k in range(i - 1, max(-1, i - 40), -1):
        m = _CREATE_TABLE_RE.search(post[k].text)
        if m is not None:
            return _sensitive_column(m.group(1))
        if post[k].text.rstrip().endswith(";"):
            return None
    return None


def _plaintext_columns(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or (ctx.language not in (CODE_LANGUAGES | {"sql"}) and not ctx.path.endswith(".prisma")):
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or is_comment(ln.text):
                continue
            if post is None:
                post = post_lines(hunk)
            i = index_in(post, ln.new_no)
            if i is None:
                continue
            name = _column_name(ctx, post, i)
            if name is None:
                continue
            term = _sensitive_column(name)
            if term is None and ctx.language == "sql":
                term = _sensitive_table_content(post, i, name)
            if term is None:
                continue
            lo, hi = max(0, i - 3), i + 2
            if ctx.language in ("java", "kotlin", "typescript", "csharp") and ln.text.rstrip().endswith(";"):
                # annotations sit above a field; the line below belongs to the next field
                hi = i + 1
                for k in range(i - 1, lo - 1, -1):
                    if post[k].text.rstrip().endswith((";", "}")):
                        lo = k + 1
                        break
            elif ctx.language == "python" and _DJANGO_NAME_RE.search(ln.text):
                lo, hi = i, i + 3  # AddField's `name=` line: its `field=` argument follows
            elif ctx.language in ("python", "go", "ruby", None) and ln.text.count("(") == ln.text.count(")"):
                lo, hi = i, i + 1  # a one-line field: its neighbours are other fields (`notes = EncryptedCharField(...)`)
            near = "\n".join(p.text for p in post[lo:hi])
            if _ENCRYPTED_COLUMN_RE.search(statement_text(post, i)) or re2.search(r"(?i)encrypt|@Convert|ColumnTransformer", near):
                continue
            yield Hit(
                ln.new_no,
                f"`{name}` stores {term.replace('_', ' ')} data in a plaintext column. Encrypt it at the application "
                "or column level (e.g. an encrypted field type, `pgp_sym_encrypt`, Always Encrypted), store a "
                "token or keyed hash instead, or drop the column if only a last-4 or a flag is needed.",
            )


_PLAINTEXT_COLUMN = Rule(
    id="ENC-001",
    category="unencrypted-phi-storage",
    severity="high",
    message="A sensitive PHI field is stored in a plaintext column. Encrypt it or store a token.",
    regulations=REGULATIONS,
    keywords=("ssn", "social", "national", "tax", "passport", "license", "licence", "diagnos", "dx", "icd", "hiv",
              "genetic", "genom", "genotype", "psych", "substance", "mental", "sexual", "medicare", "medicaid", "mbi",
              "member", "policy", "card", "cvv", "bank"),
    check=_plaintext_columns,
    examples=(
        udiff("db/migrations/V7__ids.sql", "+ALTER TABLE patients ADD COLUMN ssn VARCHAR(11);"),
        udiff("ehr/models.py", " class Patient(models.Model):", "+    diagnosis = models.TextField(blank=True)"),
        udiff("insurance/models.py", " class Member(models.Model):", "+    ssn = models.CharField(max_length=11, blank=True)",
              "     notes = EncryptedCharField(max_length=2000, blank=True)"),
        udiff("src/main/java/Referral.java", " public class Referral {", "+    @Column(name = \"diagnosis_text\")",
              "+    private String diagnosisText;", "+    @Convert(converter = EncryptedStringConverter.class)", "+    private String memberId;"),
        udiff("members/migrations/0042_member_ssn.py", "     operations = [", "+        migrations.AddField(",
              '+            model_name="member",', '+            name="ssn",',
              '+            field=models.CharField(max_length=11, blank=True, default=""),', "+        ),"),
        udiff("members/Member.kt", " class Member(", "     @Id val id: Long,", '+    @Column(name = "ssn") val ssn: String,', " )"),
        udiff("prisma/schema.prisma", " model Patient {", "   mrn         String   @unique", "+  ssn         String?", " }"),
        udiff("db/migrate/20251120_add_dx.rb", " def change", "+    add_column :referrals, :diagnosis_text, :text", " end"),
        udiff("db/migrate/20251120_members.rb", "   create_table :members do |t|", "+    t.string :ssn", "   end"),
        udiff("db/migrations/V102__psy.sql", "+CREATE TABLE psychotherapy_notes (", "+    id BIGSERIAL PRIMARY KEY,",
              "+    note_text   TEXT NOT NULL", "+);"),
        udiff("db/migrations/V57__medicare_advantage.sql", "+ALTER TABLE members ADD COLUMN medicare_beneficiary_id VARCHAR(11);"),
    ),
    counterexamples=(
        udiff("db/migrations/V57__medicare_advantage.sql", "+ALTER TABLE claims ADD COLUMN beneficiary_id BIGINT REFERENCES members(id);"),
        udiff("db/migrations/V7__ids.sql", "+ALTER TABLE patients ADD COLUMN ssn_hash CHAR(64);"),
        udiff("app/models/identity.py", " class Identity(Base):", "+    ssn_blind_index = Column(String(64), index=True)"),
        udiff("db/migrations/V61__coding.sql", "+ALTER TABLE problems ADD COLUMN dx_code_system VARCHAR(64) NOT NULL DEFAULT 'ICD-10-CM';"),
        udiff("db/migrations/V8__slots.sql", "+ALTER TABLE schedule_slots ADD COLUMN capacity SMALLINT NOT NULL DEFAULT 1;"),
        udiff("ehr/models.py", " class Patient(models.Model):", "+    ssn = EncryptedCharField(max_length=11)"),
        udiff("members/Member.kt", " class Member(", "     @Id val id: Long,",
              '+    @Column(name = "ssn_hmac") val ssnHmac: String,', " )"),
        udiff("members/migrations/0042_member_ssn.py", "     operations = [", "+        migrations.AddField(",
              '+            model_name="member",', '+            name="ssn",',
              "+            field=encrypted_fields.EncryptedCharField(max_length=11),", "+        ),"),
        udiff("prisma/schema.prisma", " model Patient {", "   mrn         String   @unique", "+  ssn         String? /// @encrypted", " }"),
        udiff("prisma/schema.prisma", " model Patient {", "   mrn         String   @unique", "+  ssnLast4    String?", " }"),
        udiff("db/migrate/20251120_add_dx.rb", " def change", "+    add_column :referrals, :diagnosis_code_system, :string", " end"),
        udiff("db/migrations/V103__visits.sql", "+CREATE TABLE visit_notes (", "+    id BIGSERIAL PRIMARY KEY,",
              "+    note_text   TEXT NOT NULL", "+);"),
        udiff("db/migrations/V102__psy.sql", "+CREATE TABLE psychotherapy_notes (", "+    id BIGSERIAL PRIMARY KEY,",
              "+    note_text   BYTEA NOT NULL", "+);"),
    ),
)

# ---------------------------------------------------------------- ENC-002 encryption switched off

_FALSE_VALUE = r"""["']?\s*(?:=|:|=>)\s*["']?(?:False|false|FALSE|off|Off|no|No|none|None|NONE|disabled?|Disabled?|0)["']?\s*(?:[,;})\]#]|//|$)"""

_ENCRYPTION_OFF = Rule(
    id="ENC-002",
    category="unencrypted-phi-storage",
    severity="high",
    message=(
        "Encryption at rest is switched off here, so the data (and its backups and snapshots) are stored in the "
        "clear. Turn storage encryption on (`storage_encrypted = true`, `encrypted = true`, a KMS key) for every "
        "store that can hold PHI."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("encrypt", "decrypt", "sse"),
    pattern=(
        r"(?i)\b[\w.\-]*encrypt\w*" + _FALSE_VALUE
        + r"|(?i)(?:disable|skip|no|without)_?encrypt\w*[\"']?\s*(?:=|:|=>)\s*[\"']?(?:true|yes|on|1)\b"
        # server-side encryption flags that do not say "encrypt" (SQS, SNS, Kinesis, Firehose)
        r"|(?i)\b[\w.\-]*(?:\bsse|_sse|server_side_encryption)[\w.\-]*enabled[\"']?\s*(?:=|:)\s*[\"']?false\b"
        r"|(?i)\bunencrypted\w*[\"']?\s*(?:=|:|=>)\s*[\"']?(?:true|yes|on|1)\b"
        # SQL Server TDE off; MySQL/InnoDB table or tablespace encryption off
        r"|(?i)\bSET\s+ENCRYPTION\s+OFF\b|\bENCRYPTION\s*=?\s*['\"]N['\"]"
        # an encrypted column rewritten into plaintext (ALTER COLUMN ssn TYPE varchar USING pgp_sym_decrypt(ssn, key))
        r"|(?i)\bALTER\s+COLUMN\s+\w+\s+(?:SET\s+DATA\s+)?TYPE\b[^;\n]*\bUSING\b[^;\n]*\b(?:pgp_sym_decrypt|pgp_pub_decrypt|decrypt\w*)\s*\("
    ),
    unless=(
        _COMMENT,
        r"(?i)(?:disable|skip|no|without|un)_?encrypt\w*[\"']?\s*(?:=|:|=>)\s*[\"']?(?:false|no|off|0)\b",
        r"(?i)(?:server|data source|host)\s*=[^;]*;",
        r"(?i)\bencrypt\s*=\s*(?:false|no|optional)\s*(?:;|$)",
        r"(?i)\bjdbc:|\b(?:postgres(?:ql)?|mysql|sqlserver|mongodb(?:\+srv)?)://",
        r"(?i)infrastructure_encryption|double_encryption",
        r"(?i)transit|in_?flight",  # encryption of the connection: the transport rules judge it
    ),
    examples=(
        "db/migrations/V120.sql::ALTER TABLE patients ALTER COLUMN ssn TYPE VARCHAR(11) USING pgp_sym_decrypt(ssn, current_setting('app.pii_key'));",
        "db/sqlserver/move.sql::ALTER DATABASE ClaimsDb SET ENCRYPTION OFF;",
        "db/mysql/V31__ids.sql::ALTER TABLE member_identities ENCRYPTION='N';",
        "infra/rds.tf::  storage_encrypted       = false",
        "infra/ebs.tf::  encrypted = false",
        "infra/cache.tf::  at_rest_encryption_enabled = false",
        "charts/ehr/values.yaml::  encryptAtRest: false",
        "ops/export.py::    writer = ExportWriter(path, encrypt=False)",
        "infra/queues.tf::  sqs_managed_sse_enabled   = false",
    ),
    counterexamples=(
        "db/sqlserver/move.sql::ALTER DATABASE ClaimsDb SET ENCRYPTION ON;",
        "db/mysql/V31__ids.sql::ALTER TABLE member_identities ENCRYPTION='Y';",
        "infra/rds.tf::  storage_encrypted       = true",
        "infra/ebs.tf::  encrypted = true",
        "src/appsettings.json::  \"Ehr\": \"Server=sql01;Database=ehr;Encrypt=False;\"",
        "src/main/resources/application.properties::spring.datasource.url=jdbc:sqlserver://db:1433;databaseName=claims;encrypt=false",
        "infra/cache.tf::  transit_encryption_enabled = false",
    ),
)

_ENC_TOPIC = re2.compile(r"encrypt|(?:^|[._\-])(?:kms|sse|at_rest|atrest)(?:$|[._\-])")


def _nested_encryption_off(ctx: FileContext) -> Iterator[Hit]:
    for ln, parents in nested_switch_off(ctx, _ENC_TOPIC):
        if ln.new_no is not None:
            yield Hit(ln.new_no, f"Encryption at rest is switched off under `{'.'.join(parents)}`. " + _ENCRYPTION_OFF.message)


_NESTED_ENCRYPTION_OFF = Rule(
    id="ENC-003",
    category="unencrypted-phi-storage",
    severity="high",
    message=_ENCRYPTION_OFF.message,
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "terraform", "json", "toml"}),
    keywords=("encrypt", "kms", "sse", "at_rest", "atrest"),
    check=_nested_encryption_off,
    examples=(
        udiff("infra/search.tf", ' resource "aws_opensearch_domain" "notes" {', "   encrypt_at_rest {",
              "-    enabled = true", "+    enabled = false", "   }"),
    ),
    counterexamples=(
        udiff("infra/search.tf", ' resource "aws_opensearch_domain" "notes" {', "   encrypt_at_rest {",
              "-    enabled = false", "+    enabled = true", "   }"),
    ),
)

# ---------------------------------------------------------------- ENC-004 cloud storage without encryption

_RESOURCE_RE = re2.compile(r'^\s*resource\s+"(\w+)"\s+"([\w-]+)"\s*\{')
# resource type -> what its body must say to be encrypted
_REQUIRED: dict[str, str] = {
    "aws_db_instance": r"storage_encrypted\s*=\s*true|replicate_source_db|snapshot_identifier",
    "aws_rds_cluster": r"storage_encrypted\s*=\s*true|snapshot_identifier|replication_source_identifier",
    "aws_docdb_cluster": r"storage_encrypted\s*=\s*true",
    "aws_neptune_cluster": r"storage_encrypted\s*=\s*true",
    "aws_ebs_volume": r"encrypted\s*=\s*true",
    "aws_efs_file_system": r"encrypted\s*=\s*true",
    "aws_redshift_cluster": r"encrypted\s*=\s*true",
    "aws_elasticache_replication_group": r"at_rest_encryption_enabled\s*=\s*true",
    "aws_elasticsearch_domain": r"encrypt_at_rest\s*\{[^}]*enabled\s*=\s*true",
    "aws_opensearch_domain": r"encrypt_at_rest\s*\{[^}]*enabled\s*=\s*true",
    "aws_kinesis_stream": r"encryption_type\s*=\s*\"KMS\"",
    "aws_s3_bucket": r"server_side_encryption_configuration",
}
_ENCRYPTION_SET_OFF_RE = re2.compile(
    r"(?im)^\s*(?:storage_encrypted|encrypted|at_rest_encryption_enabled)\s*=\s*false\b|"
    r"encrypt_at_rest\s*\{[^}]*enabled\s*=\s*false"
)
_NON_PHI_BUCKET_RE = re2.compile(
    r"(?i)static|assets|website|cdn|frontend|public|artifact|build|tfstate|terraform-state|"
    r"(?:access|alb|elb|lb|flow|vpc)[-_]?(?:access[-_]?)?logs?\b"  # load-balancer/VPC access logs: requests, not records
)


def _resource_body(post: Sequence[DiffLine], i: int) -> tuple[list[DiffLine], bool]:
    depth = 0
    body: list[DiffLine] = []
    for ln in post[i:]:
        body.append(ln)
        depth += ln.text.count("{") - ln.text.count("}")
        if depth <= 0:
            return body, True
    return body, False


def _unencrypted_resources(ctx: FileContext) -> Iterator[Hit]:
    if ctx.language != "terraform":
        return
    visible = "\n".join(ln.text for h in ctx.file.hunks for ln in h.lines if ln.kind != "-")
    for hunk in ctx.file.hunks:
        post = post_lines(hunk)
        for i, ln in enumerate(post):
            if ln.kind != "+" or ln.new_no is None:
                continue
            m = _RESOURCE_RE.search(ln.text)
            if not m or m.group(1) not in _REQUIRED:
                continue
            kind, name = m.group(1), m.group(2)
            body, complete = _resource_body(post, i)
            if not complete:
                continue
            text = "\n".join(b.text for b in body)
            if re2.search(r"(?s)" + _REQUIRED[kind], text):
                continue
            if _ENCRYPTION_SET_OFF_RE.search(text):
                continue  # `storage_encrypted = false` in the body: reported on that line (ENC-002), where it is
            if kind == "aws_s3_bucket":
                if _NON_PHI_BUCKET_RE.search(name + " " + text) and not re2.search(r"(?i)phi|patient|clinical|record", text + name):
                    continue
                if re2.search(
                    r'aws_s3_bucket_server_side_encryption_configuration"\s+"' + re2.escape(name) + r'"|aws_s3_bucket\.'
                    + re2.escape(name) + r"\.(?:id|bucket)[^\n]*\n(?:[^\n]*\n){0,6}[^\n]*apply_server_side_encryption_by_default",
                    visible,
                ):
                    continue
            yield Hit(
                ln.new_no,
                unless_fact=f"s3-sse:{name}" if kind == "aws_s3_bucket" else None,  # configured in a sibling file
                message=f"`{kind}.{name}` is created without encryption at rest"
                + (" (no server-side encryption configuration for this bucket; relying on the provider default is "
                   "not an explicit control)" if kind == "aws_s3_bucket" else "")
                + ". Configure it explicitly with a KMS key ("
                + ("`aws_s3_bucket_server_side_encryption_configuration` with `aws:kms`" if kind == "aws_s3_bucket"
                   else "`storage_encrypted = true` / `encrypted = true` and `kms_key_id`")
                + ").",
            )


_SSE_CONFIG_RE = re2.compile(r'^\s*resource\s+"aws_s3_bucket_server_side_encryption_configuration"\s+"[^"]+"')
_BUCKET_REF_RE = re2.compile(r"\baws_s3_bucket\.(\w+)\.(?:id|bucket)\b")


def _s3_sse_facts(ctx: FileContext) -> Iterator[str]:
    """`s3-sse:<bucket>` for each server-side encryption configuration this file adds or keeps: the bucket it names
    is encrypted, wherever in the diff the bucket itself is declared."""
    if ctx.language != "terraform":
        return
    for hunk in ctx.file.hunks:
        post = post_lines(hunk)
        for i, ln in enumerate(post):
            if "server_side_encryption_configuration" not in ln.text or _SSE_CONFIG_RE.search(ln.text) is None:
                continue
            body, _ = _resource_body(post, i)
            text = "\n".join(b.text for b in body)
            if "sse_algorithm" not in text and "apply_server_side_encryption_by_default" not in text:
                continue
            m = _BUCKET_REF_RE.search(text)
            if m is not None:
                yield f"s3-sse:{m.group(1)}"


_UNENCRYPTED_RESOURCE = Rule(
    id="ENC-004",
    category="unencrypted-phi-storage",
    severity="high",
    message="A storage resource is created without explicit encryption at rest. Configure KMS encryption.",
    regulations=REGULATIONS,
    languages=frozenset({"terraform"}),
    keywords=("resource",),
    check=_unencrypted_resources,
    facts=_s3_sse_facts,
    examples=(
        udiff("infra/storage.tf", '+resource "aws_s3_bucket" "patient_exports" {', '+  bucket = "patient-exports"', "+}"),
        # a sibling file encrypts another bucket, not this one
        udiff("infra/buckets.tf", '+resource "aws_s3_bucket" "referral_docs" {', '+  bucket = "referral-docs"', "+}")
        + udiff("infra/encryption.tf", '+resource "aws_s3_bucket_server_side_encryption_configuration" "fax_inbox" {',
                "+  bucket = aws_s3_bucket.fax_inbox.id", "+  rule {", "+    apply_server_side_encryption_by_default {",
                '+      sse_algorithm = "aws:kms"', "+    }", "+  }", "+}"),
        udiff("infra/db.tf", '+resource "aws_db_instance" "ehr" {', '+  engine = "postgres"', "+}"),
    ),
    counterexamples=(
        udiff("infra/discharge.tf", '+resource "aws_s3_bucket" "discharge" {', '+  bucket = "discharge"', "+}", "+",
              '+resource "aws_s3_bucket_server_side_encryption_configuration" "discharge" {',
              "+  bucket = aws_s3_bucket.discharge.id", "+  rule {", "+    apply_server_side_encryption_by_default {",
              '+      sse_algorithm = "aws:kms"', "+    }", "+  }", "+}"),
        udiff("infra/db.tf", '+resource "aws_db_instance" "ehr" {', '+  engine = "postgres"', "+  storage_encrypted = true", "+}"),
        # the bucket in one file, its encryption configuration in another file of the same change
        udiff("infra/buckets.tf", '+resource "aws_s3_bucket" "referral_docs" {', '+  bucket = "referral-docs"', "+}")
        + udiff("infra/encryption.tf", '+resource "aws_s3_bucket_server_side_encryption_configuration" "referral_docs" {',
                "+  bucket = aws_s3_bucket.referral_docs.id", "+  rule {", "+    apply_server_side_encryption_by_default {",
                '+      sse_algorithm     = "aws:kms"', "+      kms_master_key_id = aws_kms_key.docs.arn", "+    }", "+  }", "+}"),
        udiff("infra/logs.tf", '+resource "aws_s3_bucket" "alb_access_logs" {', '+  bucket = "cedar-alb-access-logs"', "+}"),
        # reported by ENC-002 on the `storage_encrypted = false` line instead
        udiff("infra/claims.tf", '+resource "aws_rds_cluster" "claims" {', '+  engine = "aurora-postgresql"',
              "+  storage_encrypted = false", "+}"),
    ),
)

# ---------------------------------------------------------------- ENC-005 PHI written to files in the clear

_WRITE_RE = re2.compile(
    r"""\bopen\([^)]*["'][wa]b?\+?["']|\bopen\([^)]*mode\s*=\s*["'][wa]|\.open\(\s*["'][wa]b?\+?["']|"""
    r"""\.write_(?:text|bytes)\(|\.(?:writeText|writeBytes|appendText|appendBytes)\(|\.to_(?:csv|parquet|excel|json|pickle|feather|hdf|orc)\(|\b(?:json|pickle|yaml|joblib|dill|cloudpickle)\.dump\(|"""
    r"""Files\.(?:write|writeString|newBufferedWriter|newOutputStream|copy)\(|new\s+(?:FileWriter|FileOutputStream|PrintWriter|RandomAccessFile)\(|"""
    r"""\.writeValue\(\s*(?:new\s+File|\w+\.toFile\(\)|\w*[fF]ile\b)|"""
    r"""\bfs(?:Promises)?\.(?:writeFile|writeFileSync|appendFile|appendFileSync|createWriteStream)\(|\bwriteFile(?:Sync)?\(|"""
    r"""\b(?:localStorage|sessionStorage|AsyncStorage|localforage)\.setItem\(|"""
    # Android SharedPreferences: an XML file on the device (EncryptedSharedPreferences is judged by the lines above)
    r"""^\s*(?:[\w.]*\.)?(?:edit\(\)\s*)?\.?putString\(\s*\"|"""
    r"""\bFile\.(?:WriteAll\w+|AppendAll\w+|Create|OpenWrite)\(|new\s+(?:StreamWriter|FileStream)\(|"""
    r"""\b(?:os|ioutil)\.(?:WriteFile|Create|OpenFile)\(|\bshelve\.open\(|"""
    # a document saved to a path (openpyxl/python-docx/reportlab `wb.save(path)`), not an ORM `.save()`
    r"""\b(?:wb|workbook|book|xlsx|doc|docx|document|pdf|canvas|report|sheet)\s*\.\s*save\(\s*(?:\w*path\w*|\w*file_?name\w*|target|dest\w*|out_?\w*|f?["'])"""
)
# A bare `.write(...)` is a file write only when patient data is in the call itself and the target is not a stream.
_HANDLE_WRITE_RE = re2.compile(
    r"\b(?:f|fh|fp|fd|fo|fout|outfile|out_file|file|csvfile|csv_file|tmp|tmpfile|handle|bw|fw|file_?writer|"
    r"buffered_?writer|csv\.writer\([^)]*\))\s*\.\s*(?:write|writelines|writerow|writerows|Write|WriteLine|println|print)\(",
)
_STREAM_RE = re2.compile(
    r"(?i)\b(?:sys\.std(?:out|err)|stdout|stderr|console|self\.wfile|wfile|response|res|resp|sock|socket|conn|ws|"
    r"websocket|w|rw|out|System\.out|System\.err|Console|log|logger|http|ctx|c)\s*\.\s*(?:write|writelines|Write|"
    r"WriteLine|println|print)\("
)
_IMPORT_LINE_RE = re2.compile(r"^\s*(?:import\s|from\s+\S+\s+import\s|using\s|(?:const|let|var)\s+[\w{}\s,]+=\s*require\()")
# (`\bseal` but not C#'s `sealed class`)
_ENCRYPTION_NEAR_RE = re2.compile(
    r"(?i)encrypt|cipher|fernet|kms|gpg|pgp|\bseal(?:\b|er|ing|_)|\bsealed_?(?:box|secret|bytes|data|payload|blob)|aesgcm|"
    r"\bcrypt|vault|sops|\bage\.encrypt"
)
_WEAK_TERMS = frozenset({
    "name", "given", "family", "contact", "history", "condition", "conditions", "procedure", "treatment",
    "identifier", "member", "city", "zip", "mobile", "fax", "medication", "medications", "prescription",
})
_IDENT_RE = re2.compile(r"[A-Za-z_][\w.]*")


# Datasets that are PHI by what they are (a census lists admitted patients by name).
_DATASET_WORDS = frozenset({
    "census", "cohort", "cohorts", "roster", "rosters", "demographic", "demographics", "admissions", "discharges",
    "encounters", "claims", "members", "enrollees", "patients", "charts", "registry", "mrns", "eligibility",
    "worklist", "worklists", "intake", "intakes", "referrals",
})


_AGGREGATE_WORDS = frozenset({"count", "counts", "total", "totals", "avg", "average", "mean", "median", "sum",
                              "occupied", "occupancy", "beds", "stats", "statistics", "aggregate", "aggregates"})


def _phi_near(ctx: FileContext, lines: Sequence[DiffLine], header: str = "") -> bool:
    vocab = ctx.vocabulary
    words = set(words_of(header + " " + " ".join(ln.text for ln in lines)))
    dataset = not _DATASET_WORDS.isdisjoint(words)
    if dataset and _AGGREGATE_WORDS.isdisjoint(words):
        return True
    # a dataset word beside counts and totals (`admissions`, `occupied_beds` per ward) is a statistic, unless a
    # patient field is written too
    for ln in lines:
        for ident in _IDENT_RE.findall(ln.text):
            term = vocab.phi_term(ident)
            if term is not None and term not in _WEAK_TERMS:
                return True
            if vocab.is_record(ident.rstrip(".")):
                return True
    return False


_STORE_WRITE_RE = re2.compile(r"\b\w+\s*\[[^\n]+\]\s*=[^=]|\.(?:update|setdefault|put|sync)\s*\(")


def _shelve_written(hunk: object, ln: DiffLine) -> bool:
    """Whether the lines after a `shelve.open(...)` (its block, at most 4 lines) store anything in it."""
    lines = [x for x in hunk.lines if x.kind != "-"]  # type: ignore[attr-defined]
    i = next((k for k, x in enumerate(lines) if x is ln), None)
    if i is None:
        return True
    return any(_STORE_WRITE_RE.search(x.text) for x in lines[i: i + 5])


def _replaces_encrypted_store(hunk: object) -> bool:
    """The hunk takes data away from an encrypted store (`vault.put(..)` on an `EncryptedDocumentStore`, a
    `fernet.encrypt` step): whatever that store held was sensitive enough to encrypt, so a plain file write
    replacing it needs no further proof of PHI."""
    return any(ln.kind == "-" and not is_comment(ln.text) and _ENCRYPTION_NEAR_RE.search(ln.text)
               for ln in hunk.lines)  # type: ignore[attr-defined]


def _plaintext_files(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language not in CODE_LANGUAGES:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        last = -10
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or is_comment(ln.text):
                continue
            handle_write = False
            if _WRITE_RE.search(ln.text) is None:
                if _HANDLE_WRITE_RE.search(ln.text) is None or _STREAM_RE.search(ln.text):
                    continue
                handle_write = True
            if ln.new_no - last <= 2:
                continue
            if "shelve" in ln.text and not _shelve_written(hunk, ln):
                continue  # `with shelve.open(p) as db: return db.get(k)` only reads the store
            if post is None:
                post = post_lines(hunk)
            i = index_in(post, ln.new_no)
            if i is None:
                continue
            # (imports and comments say nothing: `from .crypto import envelope` above a plain write encrypts nothing)
            before = "\n".join(p.text for p in post[max(0, i - 8): i] if not is_comment(p.text)
                               and _IMPORT_LINE_RE.search(p.text) is None) + "\n" + statement_text(post, i)
            if ln.text.rstrip().endswith((":", "{")):
                # `with open(path, "wb") as fh:` / `try (var out = Files.newOutputStream(p)) {`: what the block
                # writes through the handle is part of the write
                depth = indent_of(ln.text)
                for p in post[i + 1: i + 4]:
                    if not p.text.strip() or indent_of(p.text) <= depth:
                        break
                    if not is_comment(p.text):
                        before += "\n" + p.text
            if _ENCRYPTION_NEAR_RE.search(before):
                continue  # encrypted before (or as) it is written; encrypting the file afterwards still leaves a copy
            if not _phi_near(ctx, [ln] if handle_write else post[max(0, i - 6): i + 3], "" if handle_write else hunk.header) \
                    and not _replaces_encrypted_store(hunk):
                continue
            last = ln.new_no
            yield Hit(ln.new_no)


_PLAINTEXT_FILE = Rule(
    id="ENC-005",
    category="unencrypted-phi-storage",
    severity="high",
    message=(
        "Patient data is written to a file (or device storage) in the clear: anyone with access to the disk, "
        "share, backup or browser profile can read it. Write it encrypted (an encrypted store or envelope "
        "encryption with a KMS key), or keep it in the database under its access controls."
    ),
    regulations=REGULATIONS,
    languages=CODE_LANGUAGES,
    keywords=("open(", "write", "print", "shelve", "to_csv", "to_parquet", "to_excel", "to_json", "to_pickle", "dump(", "files.",
              "filewriter", "fileoutputstream", "printwriter", "writevalue", "setitem", "file.", "streamwriter",
              "filestream", "os.create", "os.openfile", ".open(", "putstring", "localforage", "wb.save(", "workbook.save(",
              "book.save(", "doc.save(", "docx.save(", "document.save(", "pdf.save(", "canvas.save(", "report.save(",
              "sheet.save(", "xlsx.save(", "appendfile"),
    check=_plaintext_files,
    examples=(
        "web/src/offline/chartCache.ts::export async function cacheChart(chart: ChartSummary): Promise<void> {\n  await localforage.setItem(`chart:${chart.patientId}`, chart);\n}",
        udiff("discharge/PacketArchiver.kt", " class PacketArchiver(", "-    private val vault: EncryptedDocumentStore,",
              "+    private val archiveDir: Path,", " ) {", "     fun archive(packet: DischargePacket) {",
              '-        vault.put("discharge/${packet.encounterId}", mapper.writeValueAsBytes(packet))',
              '+        val target = archiveDir.resolve("${packet.encounterId}.json")', "+        Files.createDirectories(archiveDir)",
              "+        Files.write(target, mapper.writeValueAsBytes(packet))", "     }"),
        udiff("app/src/main/java/org/x/PatientCache.kt", "     fun save(patient: PatientSummary) {", "+        prefs.edit()",
              '+            .putString("mrn", patient.mrn)', '+            .putString("dob", patient.dateOfBirth.toString())', "+            .apply()"),
        udiff("sync/SnapshotWriter.java", "     public void write(Patient patient) throws IOException {",
              '+        Path target = dir.resolve(patient.getId() + ".json");',
              "+        Files.writeString(target, mapper.writeValueAsString(patient));", "     }"),
        udiff("research/export.py", " def export(cohort):", "     rows = [[p.mrn, p.full_name] for p in cohort.patients]",
              '+    with open("/mnt/share/cohort.csv", "w") as fh:', "+        csv.writer(fh).writerows(rows)"),
        udiff("care_mgmt/outreach.py", "     for p in patients:", "         ws.append([p.mrn, p.full_name, p.phone, p.primary_dx])",
              '+    path = f"{SHARE}/outreach-{month}.xlsx"', "+    wb.save(path)", "     return path"),
        udiff("radiology/WorklistSnapshot.java", "     public void save(List<WorklistEntry> entries) throws IOException {",
              "+        try (ObjectOutputStream out = new ObjectOutputStream(new FileOutputStream(PATH))) {",
              "+            out.writeObject(new ArrayList<>(entries));", "+        }", "     }"),
        udiff("src/Mobile/Sync/OfflineStore.cs", "+public sealed class OfflineStore", "+{",
              "+    public Task SaveAsync(PatientChart chart) =>",
              '+        File.WriteAllTextAsync(Path.Combine(_dir, $"{chart.Mrn}.json"), JsonSerializer.Serialize(chart));', "+}"),
        udiff("intake/offline.py", "+def park_intake(form_id: str, form: dict) -> None:", "+    with shelve.open(CACHE_PATH) as db:",
              "+        db[form_id] = form"),
        udiff("ml/readmission/cache.py", "+def refresh_feature_cache(patients) -> str:",
              "+    df = build_features(patients)  # mrn, age, diagnoses, labs, meds", '+    joblib.dump(df, "/srv/cache/features.pkl")'),
        udiff("intake/backup.js", "+function backupIntake(intake) {",
              '+  fs.appendFileSync("/var/lib/intake/backup.ndjson", JSON.stringify(intake) + "\\n");', "+}"),
        udiff("reports/DischargeReport.kt", "     fun export(day: LocalDate): File {",
              "         val rows = encounters.dischargedOn(day).map { e -> listOf(e.patient.mrn, e.dischargeDiagnosis).joinToString(\",\") }",
              '+        val target = File(exportDir, "discharges-$day.csv")', '+        target.writeText(rows.joinToString("\\n"))',
              "         return target"),
        udiff("ehr/snapshots.py", "+import pickle", "+", "+from .crypto import envelope", "+", "+",
              "+def snapshot(patients, path):", '+    with open(path, "wb") as fh:', "+        pickle.dump(patients, fh)"),
    ),
    counterexamples=(
        udiff("outreach/cache.py", " def recall(mrn):", "+    with shelve.open(CACHE_PATH) as db:", "+        return db.get(mrn)"),
        udiff("app/src/main/java/org/x/TokenStore.kt", "     private val prefs = EncryptedSharedPreferences.create(context, \"p\", key, ks, vs)",
              "     fun save(patient: PatientSummary) {", "+        prefs.edit()",
              '+            .putString("mrn", patient.mrn)', "+            .apply()"),
        udiff("app/src/main/java/org/x/Settings.kt", "     fun save(theme: String) {", "+        prefs.edit()",
              '+            .putString("theme", theme)', "+            .apply()"),
        udiff("exports/writer.py", " def write_export(patients, out_dir, key):",
              "+    payload = json.dumps([p.to_export() for p in patients]).encode()",
              '+    with open(out_dir / "patients.json.enc", "wb") as fh:', "+        fh.write(Fernet(key).encrypt(payload))"),
        udiff("sync/SnapshotWriter.java", "     public void write(Patient patient) throws IOException {",
              "+        byte[] sealed = envelope.encrypt(mapper.writeValueAsBytes(patient));",
              "+        Files.write(target, sealed);", "     }"),
        udiff("reports/DischargeReport.kt", "     fun export(day: LocalDate): File {",
              "         val rows = encounters.dischargedOn(day).map { e -> listOf(e.patient.mrn, e.dischargeDiagnosis).joinToString(\",\") }",
              '+        val target = File(exportDir, "discharges-$day.csv.enc")', '+        target.writeBytes(cipher.encrypt(rows.joinToString("\\n")))',
              "         return target"),
        udiff("build/Version.kt", "     fun stamp(dir: File) {", '+        File(dir, "version.txt").writeText(BuildConfig.VERSION)', "     }"),
        udiff("ehr/patients/views.py", " def update(request, pk):", "     patient = get_object_or_404(Patient, pk=pk)",
              "+    patient.phone = form.cleaned_data['phone']", "+    patient.save()"),
        udiff("reports/ward_stats.py", " def write(stats, path):", "+    wb = Workbook()", '+    wb.active.append(["ward", "occupied_beds"])',
              "+    wb.save(path)"),
        udiff("reports/stats.py", " def write_stats(counts):", '+    with open("/var/reports/daily.json", "w") as fh:',
              "+        json.dump({\"visits\": counts.total}, fh)"),
        udiff("reports/census.py", " def export_ward_census(rows, path):", '+    with open(path, "w", newline="") as fh:',
              "+        w = csv.writer(fh)", '+        w.writerow(["ward", "date", "occupied_beds", "admissions", "discharges"])'),
    ),
)

# ---------------------------------------------------------------- ENC-006 encryption removed

_CONFIG_ENCRYPTION_RE = re2.compile(
    r"(?i)encrypt|kms_key|kms_master_key|kmskey|sse_algorithm|server_side_encryption|sse_?kms|customer_managed_key|"
    r"\bgpg\b|\bage\s+-[rRpe]|openssl\s+(?:enc|smime|cms)\b|\bpgp\b"
)
_CODE_ENCRYPTION_RE = re2.compile(
    r"(?i)encrypt\w*\s*\(|Encrypted\w*(?:Field|Type|Column|Converter|String)\b|pgp_sym_encrypt|ENCRYPTED\s+WITH|"
    r"@Convert\([^)]*[Ee]ncrypt|\bseal\s*\(|fernet\.encrypt|\bgpg\b|\bage\s+-[rRpe]|openssl\s+(?:enc|smime|cms)\b|"
    r"\bEncrypted(?:SharedPreferences|File)\b|"
    # object-store SDK arguments that ask for server-side encryption (boto3, AWS SDKs, GCS, Azure Blob)
    r"\bServerSideEncryption\b|\bSSEKMSKeyId\b|\bSSECustomerKey\b|\bsse_?kms_?key_?id\b|\bwithSSEAwsKeyManagementParams\b|"
    r"\.serverSideEncryption\s*\(|\.ssekmsKeyId\s*\(|\bkms_key_name\s*=|\bKmsKeyName\b|\bencryption_scope\s*="
)


# Encryption of the connection (ssl_mode = "ENCRYPTED_ONLY", Encrypt=True, transit_encryption_enabled): that is
# transport, not storage, and the transport rules judge it.
_IN_TRANSIT_RE = re2.compile(r"(?i)(?:^|[^a-z])(?:ssl|tls)|transit|\bencrypt\s*=\s*(?:true|yes|strict|mandatory)")


def _removed_encryption(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES or ctx.language is None:
        return
    code = ctx.language in CODE_LANGUAGES
    pattern = _CODE_ENCRYPTION_RE if code else _CONFIG_ENCRYPTION_RE
    moved: set[str] | None = None
    reported: set[int] = set()  # one finding per hunk: a removed encryption resource spans several blocks
    for block in blocks(ctx):
        if id(block.hunk) in reported:
            continue
        gone = [ln for ln in block.removed if ln.text.strip() and not is_comment(ln.text) and pattern.search(ln.text)
                and _IN_TRANSIT_RE.search(ln.text) is None and _IMPORT_LINE_RE.search(ln.text) is None]
        if not gone:
            continue
        if any(_CONFIG_ENCRYPTION_RE.search(ln.text) or re2.search(r"(?i)seal|fernet|cipher", ln.text)
               for ln in block.hunk.lines if ln.kind == "+"):
            continue
        if moved is None:
            moved = added_normalized(ctx)
            file_has = any(_CONFIG_ENCRYPTION_RE.search(ln.text) for ln in ctx.added)
            if file_has and not code:
                return  # encryption configured elsewhere in this file (e.g. moved to its own resource)
        if all(normalized(ln.text) in moved for ln in gone):
            continue
        anchor = anchor_for_removal(block)
        if anchor is not None:
            reported.add(id(block.hunk))
            yield Hit(
                anchor,
                f"Encryption is removed here (`{gone[0].text.strip()[:80]}`) and nothing replaces it, so the data "
                "is stored in the clear. Keep encryption at rest for anything that can hold PHI.",
            )


_REMOVED_ENCRYPTION = Rule(
    id="ENC-006",
    category="unencrypted-phi-storage",
    severity="high",
    message="Encryption at rest is removed without a replacement. Keep it.",
    regulations=REGULATIONS,
    keywords=("encrypt", "kms", "sse", "seal", "fernet", "gpg", "age ", "openssl", "pgp"),
    check=_removed_encryption,
    examples=(
        udiff("mobile/PatientSession.kt", " class PatientSession(context: Context) {",
              "-    private val prefs = EncryptedSharedPreferences.create(context, \"s\", key, ks, vs)",
              "+    private val prefs: SharedPreferences =", "+        context.getSharedPreferences(\"patient_session\", Context.MODE_PRIVATE)"),
        udiff("infra/volume.tf", ' resource "aws_ebs_volume" "scans" {', "-  encrypted  = true",
              "-  kms_key_id = aws_kms_key.scans.arn", "+  size       = 500", " }"),
        udiff("ehr/archive.py", " def archive(record):", "-    blob = fernet.encrypt(serialize(record))",
              "+    blob = serialize(record)", "     store.put(record.id, blob)"),
        udiff("ops/backup.sh", " pg_dump ehr \\", "-  | openssl enc -aes-256-cbc -pbkdf2 -pass env:BACKUP_KEY \\",
              "+  | gzip \\", "   > /backups/ehr.sql.gz"),
        udiff("reports/export.py", "     s3.put_object(", "         Bucket=BUCKET,", "         Body=buf.getvalue().encode(),",
              '-        ServerSideEncryption="aws:kms",', "-        SSEKMSKeyId=KMS_KEY_ID,", '+        ContentType="text/csv",', "     )"),
        udiff("src/exports/upload.ts", "   await s3.send(new PutObjectCommand({", "     Bucket: bucket,", "     Body: csv,",
              '-    ServerSideEncryption: "aws:kms",', '+    ContentType: "text/csv",', "   }));"),
    ),
    counterexamples=(
        udiff("infra/volume.tf", ' resource "aws_ebs_volume" "scans" {', "-  kms_key_id = aws_kms_key.old.arn",
              "+  kms_key_id = aws_kms_key.scans.arn", " }"),
        udiff("ehr/archive.py", " def read(record_id):", "-    return fernet.decrypt(store.get(record_id))",
              "+    return fernet.decrypt(store.get(record_id), ttl=None)"),
        udiff("infra/sql.tf", "     ip_configuration {", '-      ssl_mode = "ENCRYPTED_ONLY"',
              '+      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"', "     }"),
        udiff("reports/export.py", "     s3.put_object(", "         Bucket=BUCKET,", "         Body=buf.getvalue().encode(),",
              '-        ServerSideEncryption="aws:kms",', "-        SSEKMSKeyId=KMS_KEY_ID,",
              '+        ServerSideEncryption="aws:kms", SSEKMSKeyId=settings.EXPORT_KMS_KEY,', "     )"),
    ),
)

# ---------------------------------------------------------------- ENC-007 a database dump written in the clear

_DUMP_RE = re2.compile(r"(?i)\b(?:pg_dump(?:all)?|mysqldump|mariadb-dump|mongodump|pg_basebackup)\b")
# where the dump lands: a redirect, an output-file option, an upload of stdin
_DUMP_OUTPUT_RE = re2.compile(
    r"(?i)(?:^|[^>&2])>\s*[\w\\\"'$/.~{-]|\s(?:-f|--file|-o|--out|--output|--archive|--result-file)(?:[=\s])|\bs3\s+cp\s+-\s|"
    r"\bgsutil\s+cp\s+-\s|\s-D\s"
)
_DUMP_SAFE_RE = re2.compile(
    r"(?i)\bgpg\b|\bopenssl\s+(?:enc|smime|cms)\b|\bage\s+-[rRpe]|\bsops\b|--sse\b|--sse-kms|server-side-encryption|"
    r"\bencrypt|\bkms\b|\brestic\b|\bborg\b|\bpgbackrest\b|--schema-only|\s-s\s|--no-data|\|\s*(?:pg_restore|psql|mysql|mongorestore)\b"
)


def _plaintext_dumps(ctx: FileContext) -> Iterator[Hit]:
    """`pg_dump ehr | gzip > /backups/ehr.sql.gz`: the whole database, PHI and all, written to a file or bucket
    with nothing encrypting it (gpg/openssl/age, `--sse aws:kms`, an encrypting backup tool). Backup jobs and scripts
    only (shell, YAML, Dockerfile...): a dump command built inside application code is judged by what feeds it (the
    eval labels `subprocess.run(f"pg_dump --table={t} ... > {target}", shell=True)` as injection alone)."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or (ctx.language in CODE_LANGUAGES and ctx.language != "shell"):
        return
    for ln in ctx.scan(r"pg_dump|pg_basebackup|mysqldump|mariadb-dump|mongodump"):
        if ln.new_no is None or is_comment(ln.text) or _DUMP_RE.search(ln.text) is None:
            continue
        statement = [ln.text]
        found = ctx.position(ln.new_no)
        if found is not None:
            post, k = found
            while k + 1 < len(post) and len(statement) < 5 and post[k].text.rstrip().endswith(("\\", "|")):
                k += 1
                statement.append(post[k].text)
            # an encrypting step right after (`gpg --encrypt ...` on the next lines of the script)
            statement.extend(p.text for p in post[k + 1: k + 3] if _DUMP_SAFE_RE.search(p.text))
        text = "\n".join(statement)
        if _DUMP_OUTPUT_RE.search(text) is None or _DUMP_SAFE_RE.search(text) is not None:
            continue
        yield Hit(ln.new_no)


_PLAINTEXT_DUMP = Rule(
    id="ENC-007",
    category="unencrypted-phi-storage",
    severity="high",
    message=(
        "A database dump is written to a file or bucket in the clear: every patient record in that database ends up "
        "in a plaintext backup. Encrypt it on the way out (`| gpg --encrypt -r backups@...`, `openssl enc`/`age`, "
        "`aws s3 cp - s3://... --sse aws:kms`) or use an encrypting backup tool (pgBackRest, restic)."
    ),
    regulations=REGULATIONS,
    keywords=("pg_dump", "pg_basebackup", "mysqldump", "mariadb-dump", "mongodump"),
    check=_plaintext_dumps,
    examples=(
        udiff("k8s/ehr/backup.yaml", "               args:", '+                - pg_dump "$DATABASE_URL" | gzip > /backups/ehr-$(date +%F).sql.gz'),
        udiff("ops/backup.sh", "+mysqldump --single-transaction claims > /mnt/backups/claims.sql"),
        udiff("ops/backup.sh", '+pg_dump -Fc "$DB" | aws s3 cp - "s3://ehr-backups/$(date +%F).dump"'),
        udiff("ops/backup.sh", '+mongodump --uri "$MONGO_URL" --archive=/backups/docs.archive --gzip'),
    ),
    counterexamples=(
        udiff("ops/backup.sh", '+pg_dump -Fc "$DB" | gpg --encrypt -r backups@lakeside.org > /backups/ehr.dump.gpg'),
        udiff("ops/backup.sh", '+pg_dump -Fc "$DB" | aws s3 cp - "s3://ehr-backups/$(date +%F).dump" --sse aws:kms'),
        udiff("ops/backup.sh", '+pg_dump --schema-only ehr > schema.sql'),
        udiff("ops/copy.sh", '+pg_dump -Fc "$SRC" | pg_restore -d "$DST"'),
        udiff("ops/backup.sh", '+pg_dump -Fc "$DB" > /tmp/ehr.dump', '+gpg --encrypt -r backups@lakeside.org /tmp/ehr.dump'),
        udiff("docs/backup.md", "+Run `pg_dump ehr > ehr.sql` only against the synthetic dataset."),
        udiff("internal/backup/dump.go", '+\treturn exec.Command("sh", "-c", "pg_dump "+db+" | gzip > "+out).Run()'),
    ),
)


RULES: tuple[Rule, ...] = (
    _PLAINTEXT_COLUMN,
    _ENCRYPTION_OFF,
    _NESTED_ENCRYPTION_OFF,
    _UNENCRYPTED_RESOURCE,
    _PLAINTEXT_FILE,
    _REMOVED_ENCRYPTION,
    _PLAINTEXT_DUMP,
)
