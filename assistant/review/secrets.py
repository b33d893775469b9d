"""Hard-coded secret rules: private keys, provider tokens, credential literals, passwords in URLs.

The generic rule reads `key = value` in every syntax the product meets
(Python/Java/Go/C#/JS assignments and object keys, YAML, .env, .properties,
Terraform, JSON) and then judges the value in Python, not in a regex: a value
read from the environment or a secret store, a `${PLACEHOLDER}`, an empty or
obviously fake example, a message sentence or a file path is not a secret.

Test files: private keys and provider-issued tokens (SEC-001, SEC-002) are
reported everywhere, since a real key in a fixture is still a leaked key; the
generic credential rules (SEC-003..005) skip tests, fixtures and docs, where
`password = "hunter2"` is a fake by design.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from assistant.review import re2fast as re2
from assistant.review._structure import is_comment
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext

_REGS = ("HIPAA 164.312(a)(1)", "HIPAA 164.312(d)", "SOC 2 CC6.1")

_SECRET_KEY_RE = re2.compile(
    r"(?i)(pass(?:word|wd|phrase)?|pwd|secret|token|credential|api_?key|apikey|access_?key|private_?key|"
    r"secret_?key|signing_?key|encryption_?key|master_?key|auth_?key|client_?secret|conn(?:ection)?_?str(?:ing)?|"
    r"license_?key|webhook_?secret|bearer|session_?key|app_?key|account_?key|sas_?token|dsn|authorization)"
)
# A key naming something about a secret rather than the secret itself. Matched on whole words of the key
# (`storage_account_key` is not an `age`, `admin_password` not a `min`, `refresh_token` not a `ref`).
_NOT_SECRET_KEY_RE = re2.compile(
    r"(?:^|_)(?:url|uri|endpoint|host|hostname|path|file|filename|dir|name|id|length|len|ttl|timeout|expir\w*|"
    r"minutes|seconds|header|type|field|policy|prefix|enabled?|mode|version|algorithm|algo|rounds|size|format|"
    r"regex|pattern|label|count|max|min|hint|reset|validity|lifetime|age|scope|placeholder|env|var|ref|source|"
    r"provider|store|strategy|method|required|param|column|keyid|arn|location|generator|at|is|has|question|"
    r"strength|rule|message|error|text|desc|description|template|encoder|hasher|digest|hash|issuer|audience)s?(?:_|$)"
)
_CAMEL_RE = re2.compile(r"([a-z0-9])([A-Z])")


def is_secret_key(key: str) -> bool:
    """Whether a setting's name says it holds a credential (`dbPassword`, `api-key`), not something about one."""
    words = _CAMEL_RE.sub(r"\1_\2", key).replace("-", "_").replace(".", "_").lower()
    return _SECRET_KEY_RE.search(words) is not None and _NOT_SECRET_KEY_RE.search(words) is None


_PLACEHOLDER_RE = re2.compile(
    r"(?i)^(?:|x+|\*+|\.+|-+|changeme|change_me|change-me|changeit|example\w*|sample\w*|placeholder\w*|dummy\w*|"
    r"fake\w*|test\w*|todo|tbd|none|null|nil|undefined|true|false|yes|no|on|off|secret|password|passwd|token|"
    r"redacted|hidden|your[_-].*|my[_-].*|<.*>|\[.*\]|enter[_-].*|replace[_-].*|insert[_-].*|xxx.*|foo\w*|bar|"
    r"baz|default|local\w*|dev|development|demo\w*|admin|root|user|guest|postgres|mysql|sa|required|optional|"
    r"not[_-]?set|unset|empty|n/a|na)$"
)
_REFERENCE_RE = re2.compile(
    r"(?i)(\$\{|\{\{|\$\(|#\{|%\(|%[sd]\b|\benv\b|environ|getenv|process\.env|os\.Getenv|Environment\.|"
    r"System\.get|config\[|settings\.|secretKeyRef|valueFrom|vault:|secret://|arn:aws:|ENC\(|@Value|"
    r"keyvault|secretsmanager|ssm:|/run/secrets|ENC\[|vault:v\d:|!vault|/var/run/secrets|\.pem$|\.key$|\.p12$|\.jks$|\.json$|\.txt$|"
    r"^/|^~/|^\./|^\$[A-Za-z_]|"
    # a Vault/secret-store path (`secret/data/ehr/db#password`), not the secret
    r"^(?:secret|secrets|kv|kv-v2|database|transit)/[\w\-./]+(?:#[\w\-]+)?$)"
)
_URL_RE = re2.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_CONSTANT_NAME_RE = re2.compile(r"^[A-Z][A-Z0-9_]{2,}$|^[a-z]+(?:[._-][a-z]+)+$")
_KV_RE = re2.compile(
    r"([A-Za-z_][A-Za-z0-9_.\-]*)[\"'\]]?\s*(:=|=>|=|:)\s*"
)

PRIVATE_KEY_RE = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PROVIDER = (
    r"(?:\bAKIA[0-9A-Z]{16}\b|\bASIA[0-9A-Z]{16}\b|\bsk_live_[0-9A-Za-z]{16,}|\brk_live_[0-9A-Za-z]{16,}|"
    r"\bxox[abposr]-[0-9A-Za-z-]{10,}|\bghp_[0-9A-Za-z]{30,}|\bgithub_pat_[0-9A-Za-z_]{30,}|\bgho_[0-9A-Za-z]{30,}|"
    r"\bglpat-[0-9A-Za-z_-]{20,}|\bAIza[0-9A-Za-z_-]{35}\b|hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/[0-9A-Za-z]+|"
    r"\bSG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}|\bnpm_[0-9A-Za-z]{30,}|\bpypi-[0-9A-Za-z_-]{40,}|"
    r"\bsq0csp-[0-9A-Za-z_-]{30,}|\bEAACEdEose0cBA[0-9A-Za-z]+|\bAC[0-9a-f]{32}\b.{0,40}\b[0-9a-f]{32}\b|"
    r"DefaultEndpointsProtocol=https?;AccountName=[^;\n]+;AccountKey=[A-Za-z0-9+/=]{40,}|"
    r"\beyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.[0-9A-Za-z_-]{10,})"
)
_URL_CRED_RE = re2.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^\s/:@'\"<>{}]*):([^\s@'\"/<>]+)@[A-Za-z0-9\[]")

_NO_GENERIC = frozenset({"markdown", "text"})


def entropy(value: str) -> float:
    """Shannon entropy in bits per character: random keys score high, words and repeats low."""
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_secret(value: str) -> bool:
    """Whether a literal value looks like a real credential rather than a placeholder, word or reference."""
    v = value.strip()
    if v.lower().startswith(("bearer ", "basic ", "token ")):
        v = v.split(" ", 1)[1].strip()
    if _PLACEHOLDER_RE.search(v) or _REFERENCE_RE.search(v):
        return False
    if _CONSTANT_NAME_RE.search(v):
        return False  # the name of another setting, e.g. PASSWORD_ENV = "DB_PASSWORD"
    url = _URL_RE.search(v)
    if url is not None:
        return _URL_CRED_RE.search(v) is not None  # a URL is a secret only if it carries user:password@
    if len(v) < 8 or " " in v:
        return False
    if v.isdigit() and len(v) < 12:
        return False
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v),
                   any(not c.isalnum() for c in v)))
    if classes < 2 and len(v) < 20:
        return False
    return entropy(v) >= 2.5


_ENCRYPTED_FILE = r"kind:\s*sealedsecret|^\s*encrypteddata:|^sops:|\$ansible_vault;|enc\[aes256_gcm"
_UNQUOTED = frozenset({"dotenv", "properties", "yaml", "ini", "toml", None, "dockerfile", "shell"})
_SECRET_WORDS = r"(?:pass|pwd|secret|token|credential|key|bearer|conn|dsn|authorization)"
# Candidate lines: a secret-ish key, then an operator, then (in code) a quote.
# a literal wrapped into bytes is still a literal: []byte("k"), Buffer.from("k"), Encoding.UTF8.GetBytes("k"), bytes("k")
_BYTES_WRAP = r"(?i:\[\]byte\s*\(|Buffer\.from\s*\(|bytes\s*\(|(?:System\.Text\.)?Encoding\.\w+\.GetBytes\s*\(|new\s+TextEncoder\(\)\.encode\s*\()"
_BYTES_WRAP_RE = re2.compile("^" + _BYTES_WRAP)
_GATE_QUOTED = (_SECRET_WORDS + r"[\w.\-]*[\"'\]]?\s*(?::=|=>|=|:)\s*" + _BYTES_WRAP + r"?[@$]?[rbuf]?[\"'`]|"
                r"[\"'`](?:bearer|basic) ")
_GATE_ANY = _SECRET_WORDS + r"[\w.\-]*[\"'\]]?\s*(?::=|=>|=|:)\s*\S"


def _literal_after(text: str, pos: int, language: str | None) -> str | None:
    """The literal value starting at `pos`, or None when the value is code (a call, a name, an f-string)."""
    rest = text[pos: pos + 600].strip()  # a bounded window keeps a 1 MB line linear
    if not rest:
        return None
    wrap = _BYTES_WRAP_RE.search(rest)
    if wrap is not None:
        rest = rest[wrap.end():].lstrip()
        if rest[:2] in ('b"', "b'"):
            rest = rest[1:]
    q = rest[0]
    if rest[:2] in ('f"', "f'", '$"', '@"') or rest[:1] == "`" and "${" in rest:
        return None
    if q in "\"'`":
        end = rest.find(q, 1)
        if end < 0:
            return None
        value = rest[1:end]
        after = rest[end + 1:].lstrip()
        if after.startswith(("+", "%", ".format", "||", "or ", "?", "if ")):
            return None  # built from parts, or a default that is overridden
        return value
    if language in ("dotenv", "properties", "yaml", "ini", "toml", None, "dockerfile", "shell"):
        value = rest.split(" #", 1)[0].strip().rstrip(",;")
        if value.startswith(("[", "{", "|", ">", "&", "*", "!")):
            return None
        return value
    return None


def _check_assignments(ctx: FileContext) -> Iterator[Hit]:
    """`password = "literal"` in any syntax: SEC-003."""
    if ctx.is_test or ctx.language in _NO_GENERIC:
        return
    if ctx.scan(_ENCRYPTED_FILE, added_only=False):
        return  # SealedSecret / SOPS / ansible-vault: the values are ciphertext, safe to commit
    quoted = ctx.language not in _UNQUOTED
    gate = _GATE_QUOTED if quoted else _GATE_ANY
    if ctx.language == "terraform":
        # a variable's default is judged by the variable's name, a secret resource's `value` by its type
        gate = f"(?:{gate})|default\\s*=\\s*\"|value\\s*=\\s*\""
    for ln in ctx.scan(gate):
        text = ln.text
        stripped = text.lstrip(" \t-")
        if stripped.startswith(("#", "//", "*", "/*", "<!--")) and ctx.language not in ("dotenv",):
            continue
        for m in _KV_RE.finditer(text):
            key, op = m.group(1), m.group(2)
            if key == "default" and ctx.language == "terraform":
                key = _terraform_variable(ctx, ln) or key
            elif key == "value" and ctx.language == "terraform":
                key = _terraform_block(ctx, ln, _TF_RESOURCE_RE) or key
            end = m.end()
            if op == "=" and (end < len(text) and text[end:end + 1] == "=" or text[m.start(2) - 1: m.start(2)] in "!<>="):
                continue
            if op == ":" and ctx.language in ("python",) and not _in_dict(text, m.start()):
                continue  # a type annotation or a slice, not a mapping
            last = key.rsplit(".", 1)[-1]
            if not is_secret_key(last):
                continue
            value = _literal_after(text, end, ctx.language)
            if value is None or not looks_secret(value):
                continue
            yield Hit(ln.new_no or 1, f"`{last}` is set to a literal credential. Read it from the environment or "
                      "a secret store (Vault, AWS Secrets Manager, a Kubernetes Secret) and rotate the exposed value.")
            break


_TF_VARIABLE_RE = re2.compile(r"^\s*variable\s+\"([^\"]+)\"")


_TF_RESOURCE_RE = re2.compile(r"^\s*resource\s+\"([^\"]+)\"")


def _terraform_variable(ctx: FileContext, ln: object) -> str | None:
    """The name of the Terraform `variable` block a `default = ...` line belongs to."""
    return _terraform_block(ctx, ln, _TF_VARIABLE_RE)


def _terraform_block(ctx: FileContext, ln: object, block_re: object) -> str | None:
    """The label of the enclosing top-level block (`variable "db_password"`, `resource "azurerm_key_vault_secret"`)."""
    for prev in reversed(ctx.neighbours(ln.new_no or 0, 8, 0)):  # type: ignore[attr-defined]
        m = block_re.search(prev.text)  # type: ignore[attr-defined]
        if m:
            return m.group(1)
        if prev.text.startswith("}"):
            return None
    return None


_POSITIONAL_RE = re2.compile(
    r"(?:\bauth\s*=\s*\(\s*[\"'][^\"'\n]+[\"']\s*,\s*[\"']([^\"'\n]+)[\"']|"
    r"\b(?:HTTPBasicAuth|HTTPDigestAuth|BasicAuth|NetworkCredential|PasswordAuthentication|UsernamePasswordCredentials|"
    r"SetBasicAuth|setBasicAuth|basicAuth|withBasicAuth|UsernamePasswordAuthenticationToken)\s*\(\s*"
    r"[\"'][^\"'\n]+[\"']\s*,\s*[\"']([^\"'\n]+)[\"']|"
    r"\bgetConnection\s*\([^,\n]+,\s*\"[^\"\n]+\"\s*,\s*\"([^\"\n]+)\"|"
    r"\bsmtp\w*\s*\.\s*login\s*\(\s*[^,]+,\s*[\"']([^\"']+)[\"']|\.login\s*\(\s*[\"'][^\"']+[\"']\s*,\s*[\"']([^\"']+)[\"']|"
    # signing keys given inline: jwt.SignedString([]byte("..")), jwt.encode(p, ".."), jwt.sign(p, '..'), hmacShaKeyFor("..")
    r"\bSignedString\s*\(\s*\[\]byte\s*\(\s*\"([^\"]+)\"|\bjwt\s*\.\s*(?:encode|sign)\s*\(\s*(?:[\w.]+|\{[^{}\n]*\})\s*,\s*[\"']([^\"']+)[\"']|"
    r"\b(?:hmacShaKeyFor|SymmetricSecurityKey)\s*\(\s*(?:Encoding\s*\.\s*\w+\s*\.\s*GetBytes\s*\(\s*)?\"([^\"]+)\"|"
    r"\bAlgorithm\s*\.\s*HMAC\d+\s*\(\s*\"([^\"]+)\"|"
    # SQL: CREATE ROLE x LOGIN PASSWORD '..', CREATE LOGIN x WITH PASSWORD = '..', IDENTIFIED BY '..'
    r"(?i:\b(?:create|alter)\s+(?:role|user|login)\b[^'\n]*\b(?:password\s*=?|identified\s+by)\s*'([^'\n]+)')|"
    # PHP constants: define('DB_PASSWORD', '..')
    r"(?i:\bdefine\s*\(\s*['\"]\w*(?:pass|secret|token|key|pwd)\w*['\"]\s*,\s*['\"]([^'\"\n]+)['\"])|"
    # Go net/smtp: smtp.PlainAuth(identity, user, "password", host)
    r"\bPlainAuth\s*\(\s*\"[^\"\n]*\"\s*,\s*[^,\n]+,\s*\"([^\"\n]+)\")"
)


def _check_positional(ctx: FileContext) -> Iterator[Hit]:
    """A literal password passed positionally to a credential API: SEC-006."""
    if ctx.is_test or ctx.language in _NO_GENERIC:
        return
    for ln in ctx.scan(_POSITIONAL_RE.pattern, lower=False):
        m = _POSITIONAL_RE.search(ln.text)
        if m is None:
            continue
        value = next((g for g in m.groups() if g), "")
        if _PLACEHOLDER_RE.search(value) or _REFERENCE_RE.search(value) or len(value) < 6:
            continue
        if m.group(0).lstrip().lower().startswith("define"):
            name = m.group(0).split("(", 1)[1].strip().strip("'\"").split("'")[0].split('"')[0]
            if not is_secret_key(name) or not looks_secret(value):
                continue  # define('API_KEY_HEADER', 'X-Api-Key'): a name, not a credential
        yield Hit(ln.new_no or 1)


def _in_dict(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return before.endswith(("{", ",", "\"", "'")) or before == "" or text[:pos].strip() == ""


_DSN_PASSWORD_RE = re2.compile(r"(?i)(?:^|[;\s\"'])(?:password|pwd)\s*=\s*([^;\s\"'{}$<>]{4,})")
_DSN_CONTEXT_RE = re2.compile(r"(?i)(?:server|host|data source|dbname|database|user id|uid|initial catalog|port)\s*=")


def _check_url_credentials(ctx: FileContext) -> Iterator[Hit]:
    """`postgres://user:password@host`, `Server=...;Password=...;`: SEC-004."""
    if ctx.is_test or ctx.language in _NO_GENERIC:
        return
    for ln in ctx.scan(r"(?:password|pwd)\s*=\s*[^;\s\"'{}$<>]"):
        m = _DSN_PASSWORD_RE.search(ln.text)
        if m is None or not _DSN_CONTEXT_RE.search(ln.text):
            continue
        if _PLACEHOLDER_RE.search(m.group(1)) or _REFERENCE_RE.search(m.group(1)):
            continue
        yield Hit(ln.new_no or 1, "A connection string carries a literal password. Keep it in a secret store or "
                  "environment variable (or use managed identity / IAM auth) and rotate it.")
    for ln in ctx.scan(r"://[^\s/:@]*:[^\s@/]+@"):
        for m in _URL_CRED_RE.finditer(ln.text):
            password = m.group(3)
            if _PLACEHOLDER_RE.search(password) or password.startswith(("$", "%", "{", "<", ":")) or "${" in password:
                continue
            low_pw = password.lower()
            if len(password) < 4 or any(w in low_pw for w in ("pass", "pwd", "secret", "example", "changeme", "xxx", "***")):
                continue
            yield Hit(ln.new_no or 1, f"A `{m.group(1)}://` connection string carries a literal password. Build it "
                      "from environment variables or a secret store, and rotate the password.")
            break


_K8S_NAME_RE = re2.compile(r"^\s*-?\s*name:\s*[\"']?([A-Za-z_][A-Za-z0-9_.\-]*)[\"']?\s*$")
_K8S_VALUE_RE = re2.compile(r"^\s*value:\s*(.+?)\s*$")


def _check_env_entries(ctx: FileContext) -> Iterator[Hit]:
    """Kubernetes/compose `- name: DB_PASSWORD` followed by `value: literal`: SEC-005."""
    if ctx.is_test or ctx.language != "yaml":
        return
    for hunk in ctx.file.hunks:
        post = ctx.post_lines(hunk)
        for i, ln in enumerate(post[:-1]):
            m = _K8S_NAME_RE.search(ln.text)
            if not m or not is_secret_key(m.group(1)):
                continue
            nxt = post[i + 1]
            v = _K8S_VALUE_RE.search(nxt.text)
            if not v or nxt.kind != "+":
                continue
            value = v.group(1).strip("\"'")
            if looks_secret(value):
                yield Hit(nxt.new_no or 1, f"Environment variable `{m.group(1)}` gets a literal value in the manifest. "
                          "Use `valueFrom: secretKeyRef` (a Kubernetes Secret) or an external secret store.")


# The fallback of a secret read from the environment or a config placeholder is a literal in the repository, used
# wherever the variable is unset: `${geo.api-key:pk_live_..}` (Spring), `${DB_PASSWORD:-s3cr3t}` (shell/compose),
# `os.getenv("API_KEY", "sk_..")`, `process.env.API_KEY || "..."`.
_DEFAULT_RE = re2.compile(
    r"\$\{([A-Za-z_][\w.\-]*):-?([^}\s\$]+)\}|"
    r"(?:getenv|environ\.get|getOrDefault|GetEnvironmentVariable\w*|env\.str|env)\s*\(\s*[\"']([\w.\-]+)[\"']\s*,\s*"
    r"(?:default\s*=\s*)?[\"']([^\"'\n]+)[\"']|"
    r"process\.env\.([A-Za-z_]\w*)\s*(?:\|\||\?\?)\s*[\"'`]([^\"'`\n$]+)[\"'`]"
)


def _check_secret_defaults(ctx: FileContext) -> Iterator[Hit]:
    """A secret-named environment variable or placeholder whose fallback is a literal credential: SEC-007."""
    if ctx.is_test or ctx.language in _NO_GENERIC:
        return
    for ln in ctx.scan(r"\$\{[\w.\-]+:|getenv|environ\.get|getordefault|getenvironmentvariable|env\.str\(|env\(|process\.env\."):
        if is_comment(ln.text):
            continue
        for m in _DEFAULT_RE.finditer(ln.text):
            groups = m.groups()
            name = next((groups[k] for k in (0, 2, 4) if groups[k]), "")
            value = next((groups[k] for k in (1, 3, 5) if groups[k]), "")
            if not is_secret_key(name.replace("-", "_").rsplit(".", 1)[-1] if "." in name else name):
                continue
            if not looks_secret(value):
                continue
            yield Hit(ln.new_no or 1, f"The fallback of `{name}` is a literal credential, used wherever the variable is "
                      "unset and readable by anyone with the repository. Fail when it is missing instead, and rotate it.")
            break


RULES: tuple[Rule, ...] = (
    Rule(
        id="SEC-001",
        category="hardcoded-secret",
        severity="critical",
        message="A private key is committed. Remove it from the repository (and its history), revoke and rotate the "
        "key, and load keys from a secret store or a mounted secret at run time.",
        regulations=_REGS,
        keywords=("private key",),
        pattern=PRIVATE_KEY_RE,
        examples=(
            "deploy/keys/sftp_key::-----BEGIN OPENSSH PRIVATE KEY-----",
            "tests/fixtures/key.pem::-----BEGIN RSA PRIVATE KEY-----",
            "cfg/app.yaml::  tls_key: \"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE\"",
        ),
        counterexamples=(
            "config/vault.yaml::    db_password: secret/data/ehr/db#password",
            "deploy/keys/sftp_key.pub::-----BEGIN PUBLIC KEY-----",
            "svc/keys.py::PEM_HEADER_PREFIX = \"-----BEGIN \"",
        ),
    ),
    Rule(
        id="SEC-002",
        category="hardcoded-secret",
        severity="critical",
        message="A provider-issued credential (cloud key, API token, webhook URL, JWT) is committed. Revoke it at "
        "the provider, rotate it, and read it from the environment or a secret store.",
        regulations=_REGS,
        keywords=("akia", "asia", "sk_live_", "rk_live_", "xox", "ghp_", "github_pat_", "gho_", "glpat-", "aiza",
                  "hooks.slack.com", "sg.", "npm_", "pypi-", "sq0csp-", "eaaced", "accountkey=", "eyj"),
        pattern=_PROVIDER,
        examples=(
            "deploy/.env.production::STRIPE_KEY=sk_live_51HqLmDJx8Yt2PkR4vW9nZc3aBfE7gT1uQ0sXyVbN6mKjH5d",
            "infra/main.tf::  access_key = \"AKIAIOSFODNN7EXAMPLE\"",
            "notify/hook.js::const HOOK = \"https://hooks.slack.com/services/T024BE7LD/B01ABCDEF/abcdefghijklmnop1234\";",
        ),
        counterexamples=(
            "docs/setup.py::STRIPE_KEY = os.environ[\"STRIPE_SECRET_KEY\"]",
            "infra/main.tf::  access_key = var.aws_access_key_id",
        ),
    ),
    Rule(
        id="SEC-003",
        category="hardcoded-secret",
        severity="high",
        message="A credential is set to a literal value in code or configuration. Read it from the environment or "
        "a secret store and rotate the exposed value.",
        regulations=_REGS,
        keywords=("pass", "pwd", "secret", "token", "credential", "key", "bearer", "conn", "dsn"),
        check=_check_assignments,
        examples=(
            "charts/lab-gateway/values-prod.yaml::    Authorization: \"Bearer 7f3c9a1e5b2d8f4a6c0e3b7d9f1a5c2e\"",
            "reminders/sms.py::API_TOKEN = \"tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80\"",
            "k8s/configmap.yaml::  DB_PASSWORD: \"r3p0rt!ng-Pr0d-2024\"",
            "src/Db.java::private static final String DB_PASSWORD = \"Wint3r!Clinic#22\";",
            "deploy/app.properties::spring.datasource.password=Sup3rS3cret!x",
            "cmd/main.go::apiKey := \"a8f5f167f44f4964e6c998dee827110c\"",
            "infra/db.tf::  password = \"Rds-Adm1n-2024!\"",
            "web/cfg.ts::export const config = { clientSecret: \"9d8f7a6b5c4e3d2f1a0b9c8d\" };",
            "infra/variables.tf::variable \"db_password\" {\n  type    = string\n  default = \"Tf-Default-Pa55!\"\n}",
            "infra/kv.tf::resource \"azurerm_key_vault_secret\" \"lab\" {\n  name  = \"lab-api-key\"\n  value = \"lab_9c2f7e41b8d34a06a5e1c3b7\"\n}",
            "infra/azure/db.tf::  administrator_password = \"Az-Ehr-Pg-2024!secure\"",
            "svc/application.properties::clearinghouse.api-key=ch_live_5f2a9c81d7e34b60a1c9e2f7",
            "internal/auth/jwt.go::var signingKey = []byte(\"pX9!vR2#tLq8@wZ4^mN6&cJ1*hB3%yK7\")",
            "Auth/Tokens.cs::private static readonly byte[] SigningKey = Encoding.UTF8.GetBytes(\"h7Kd-92jfQ!x0Lm3-portal\");",
            "server/jwt.js::const secretKey = Buffer.from(\"7fA9c2Kq8ZpL1xV4\", \"utf8\");",
        ),
        counterexamples=(
            "charts/lab-gateway/values-prod.yaml::    Authorization: \"Bearer ${LAB_API_TOKEN}\"",
            "charts/lab-gateway/values-prod.yaml::    authorization_url: https://auth.reference-lab.com/oauth2/authorize",
            "portal/settings.py::SECRET_KEY = os.environ[\"PORTAL_SECRET_KEY\"]",
            ".env.example::DB_PASSWORD=",
            "k8s/cm.yaml::  DB_PASSWORD: \"${DB_PASSWORD}\"",
            "portal/settings.py::PASSWORD_MIN_LENGTH = 12",
            "tests/test_login.py::password = \"Sup3rS3cret!x\"",
            "portal/forms.py::password_help = \"Use at least 12 characters\"",
            "infra/db.tf::  password = var.db_password",
            "infra/kv.tf::resource \"azurerm_key_vault_secret\" \"db\" {\n  name  = \"db-password\"\n  value = random_password.db.result\n}",
            "infra/params.tf::resource \"azurerm_postgresql_flexible_server_configuration\" \"tz\" {\n  name  = \"timezone\"\n  value = \"Europe/Amsterdam-Clinic2\"\n}",
            "app/cfg.py::TOKEN_URL = \"https://auth.example.org/oauth/token\"",
            "internal/auth/jwt.go::var signingKey = []byte(os.Getenv(\"JWT_SIGNING_KEY\"))",
            "server/jwt.js::const secretKey = Buffer.from(process.env.JWT_SECRET, \"base64\");",
        ),
    ),
    Rule(
        id="SEC-004",
        category="hardcoded-secret",
        severity="high",
        message="A connection string carries a literal password. Build it from environment variables or a secret "
        "store and rotate the password.",
        regulations=_REGS,
        keywords=("://", "password", "pwd"),
        check=_check_url_credentials,
        examples=(
            "deploy/.env.production::DATABASE_URL=postgres://portal_app:Qm7!vR2x9Lp@ehr-db.internal:5432/portal",
            "svc/db.py::engine = create_engine(\"mysql://reports:Tr0ub4dor@db.internal/reports\")",
            "api/appsettings.json::    \"Ehr\": \"Server=sql.internal;Database=ehr;User Id=app;Password=Ehr!Sql#2024;\"",
        ),
        counterexamples=(
            "deploy/.env.production::REDIS_URL=redis://cache.internal:6379/0",
            "svc/db.py::url = f\"postgres://{user}:{password}@{host}/ehr\"",
            "docker-compose.yaml::      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app",
            "api/appsettings.json::    \"Ehr\": \"Server=sql.internal;Database=ehr;User Id=app;Password=${EHR_DB_PASSWORD};\"",
        ),
    ),
    Rule(
        id="SEC-006",
        category="hardcoded-secret",
        severity="high",
        message="A literal password is passed to a credential API (basic auth, JDBC, SMTP login). Read it from the "
        "environment or a secret store and rotate it.",
        regulations=_REGS,
        keywords=("auth", "credential", "getconnection", "login", "signedstring", "jwt", "hmacshakeyfor",
                  "symmetricsecuritykey", "hmac", "role", "user", "define("),
        check=_check_positional,
        examples=(
            "internal/alerts/mail.go::\tauth := smtp.PlainAuth(\"\", \"alerts@lakeside-health.org\", \"Sm7p!Alerts-2025\", \"smtp.lakeside-health.org\")",
            "billing-portal/config.php::define('DB_PASSWORD', 'B1ll!ng-Lk2025');",
            "reports/fetch.py::return requests.get(url, auth=(\"svc_reports\", \"R3ports!2024-q3\"), timeout=30)",
            "src/Db.java::Connection c = DriverManager.getConnection(url, \"ehr_app\", \"Ehr#Db2024!\");",
            "Svc/Mail.cs::client.Credentials = new NetworkCredential(\"notifier\", \"Smtp!Relay2024\");",
            "auth/jwt.go::return tok.SignedString([]byte(\"ehr-portal-signing-secret-2024\"))",
            "auth/tokens.py::return jwt.encode(claims, \"p0rtal-Sign1ng-K3y\", algorithm=\"HS256\")",
            "portal/auth/tokens.py::return jwt.encode({\"sub\": user_id, \"exp\": exp}, \"hp-portal-signing-2026-Zq81\", algorithm=\"HS256\")",
            "db/migrations/V51__reporting_role.sql::CREATE ROLE reporting LOGIN PASSWORD 'R3port!ng-2026-prod';",
        ),
        counterexamples=(
            "internal/alerts/mail.go::\tauth := smtp.PlainAuth(\"\", cfg.User, cfg.Password, cfg.Host)",
            "billing-portal/config.php::define('API_KEY_HEADER', 'X-Api-Key');",
            "billing-portal/config.php::define('DB_PASSWORD', getenv('DB_PASSWORD'));",
            "reports/fetch.py::return requests.get(url, auth=(os.environ[\"U\"], os.environ[\"P\"]), timeout=30)",
            "src/Db.java::Connection c = DriverManager.getConnection(url, user, password);",
            "auth/jwt.go::return tok.SignedString([]byte(os.Getenv(\"JWT_SECRET\")))",
            "auth/tokens.py::return jwt.encode(claims, settings.JWT_KEY, algorithm=\"HS256\")",
            "auth/tokens.py::return jwt.encode({\"sub\": uid}, settings.JWT_KEY, algorithm=\"HS256\")",
            "db/ops/rotate.sql::ALTER ROLE ehr_app PASSWORD :'app_password';",
        ),
    ),
    Rule(
        id="SEC-007",
        category="hardcoded-secret",
        severity="high",
        message="A secret's environment variable or placeholder falls back to a literal credential. Fail when it is "
        "unset instead, and rotate the exposed value.",
        regulations=_REGS,
        keywords=("${", "getenv", "environ.get", "getordefault", "getenvironmentvariable", "env.str(", "env(", "process.env."),
        check=_check_secret_defaults,
        examples=(
            "geo/src/main/java/org/x/GeoClientSettings.java::    @Value(\"${geo.api-key:pk_live_7c2e9b41f0d84a6fb53c8e1d29a7f640}\")",
            "docker-compose.yml::      DB_PASSWORD: ${DB_PASSWORD:-Pg!ehr-2026-prod}",
            "reminders/sms.py::API_TOKEN = os.getenv(\"SMS_API_TOKEN\", \"tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80\")",
            "server/config.js::const apiKey = process.env.LAB_API_KEY || \"lab_9c2f7e41b8d34a06a5e1c3b7\";",
        ),
        counterexamples=(
            "geo/src/main/java/org/x/GeoClientSettings.java::    @Value(\"${geo.api-key:}\")",
            "geo/src/main/java/org/x/GeoClientSettings.java::    @Value(\"${geo.base-url:https://geo.example.org/v2}\")",
            "docker-compose.yml::      DB_PASSWORD: ${DB_PASSWORD:-changeme}",
            "reminders/sms.py::TIMEOUT = os.getenv(\"SMS_TIMEOUT_SECONDS\", \"30\")",
            "server/config.js::const apiKey = process.env.LAB_API_KEY || \"\";",
        ),
    ),
    Rule(
        id="SEC-005",
        category="hardcoded-secret",
        severity="high",
        message="A Kubernetes/compose environment variable holding a credential gets a literal value. Use "
        "`valueFrom: secretKeyRef` or an external secret store.",
        regulations=_REGS,
        keywords=("name:",),
        check=_check_env_entries,
        examples=(
            "k8s/deploy.yaml::        - name: DB_PASSWORD\n          value: \"pr0d-Sched!2024\"",
        ),
        counterexamples=(
            "k8s/deploy.yaml::        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: password",
            "k8s/deploy.yaml::        - name: LOG_LEVEL\n          value: info",
        ),
    ),
)
