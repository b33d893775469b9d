"""Insecure transport: PHI and credentials must travel over verified TLS 1.2+.

Most of this family is line rules: turning verification off, pinning a legacy
protocol or pointing a client at a cleartext URL is visible on the line that
does it, in every language and config format. One structural rule covers the
nested-config spelling (`tls:` / `enabled: false`), where the line alone does
not say what is being switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from assistant.diffs import DiffLine

from assistant.review import re2fast as re2
from assistant.review._structure import (
    DOC_LANGUAGES,
    SOURCE_LANGUAGES,
    blocks,
    enclosing_keys,
    key_of,
    is_comment,
    named_setting_off,
    nested_switch_off,
    post_lines,
    udiff,
)
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext

REGULATIONS = ("HIPAA 164.312(e)(1)", "HIPAA 164.312(e)(2)(i)")
_COMMENT = r"^\s*(?:#|//|/\*|\*|<!--)"
_FALSE = r"""["']?(?:False|false|FALSE|0|no|No|off|Off|none|None|NONE|CERT_NONE|ssl\.CERT_NONE)\b"""
# naming a class is not using it: `import ...NoopHostnameVerifier;` is reported where it is used
_IMPORT = r"^\s*(?:import\s|using\s|from\s+\S+\s+import\s)"
_TRUE = r"""["']?(?:True|true|TRUE|1|yes|Yes|on|On)\b"""

_VERIFY_OFF = Rule(
    id="TLS-001",
    category="insecure-transport",
    severity="high",
    message=(
        "TLS certificate verification is turned off, so anyone on the network path can impersonate the server "
        "and read or alter the PHI and credentials sent to it. Keep verification on; for a private CA, "
        "point the client at the CA bundle (e.g. `verify='/etc/pki/ca.pem'`, a trust store, `RootCAs`)."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=(
        "verify", "reject", "insecure", "cert_none", "unverified", "check_hostname", "checkserver", "hostname",
        "validation", "trust", "strictssl", "strict_ssl", "no-check-certificate", "curl", "ssl_verify", "identification",
        "skip", "ignore", "accept", "validate", "allow", "checkserveridentity",
    ),
    pattern=(
        r"(?i)(?:\b|_)(?:verify|verify_?ssl|ssl_?verify|verify_?certs?|verify_?tls|tls_?verify|ssl_?verification|"
        r"verify_?peer|verify_?host(?:name)?|check_?hostname|check_?certs?|reject_?unauthorized|strict_?ssl|"
        r"validate_?certs?|validate_?certificates?|cert_?reqs|verify_?mode|ssl_?validate)"
        r"""["']?\s*(?:=|:|=>)\s*""" + _FALSE
        + r"|(?:insecure|skip_?(?:tls_?|ssl_?|cert_?)?verif\w*|no_?verify|disable_?(?:ssl|tls|cert)\w*|"
        r"ssl_?disabled|ignore_?(?:ssl|cert|tls)\w*|trust_?all\w*|accept_?any_?cert\w*|trust_?server_?certificate|"
        r"allow_?invalid_?cert\w*|allow_?invalid_?host\w*|tls_?insecure|allow_?self_?signed\w*|allow_?untrusted\w*|accept_?invalid\w*)"
        r"""["']?\s*(?:=|:|=>)\s*""" + _TRUE
        # Go: verification switched by an expression (`InsecureSkipVerify: os.Getenv("HIE_SKIP_VERIFY") == "true"`,
        # `cfg.SkipVerify`, `!verify`): off wherever that expression holds, production included
        + r"|\bInsecureSkipVerify\s*[:=]\s*(?:[A-Za-z_][\w.]*\s*\(|!|[A-Za-z_]\w*\.[A-Za-z_])"
        + r"|_create_unverified_context|\bCERT_NONE\b|NoopHostnameVerifier|ALLOW_ALL_HOSTNAME_VERIFIER|"
        r"AllowAllHostnameVerifier|TrustAllStrategy|TrustSelfSignedStrategy|InsecureTrustManagerFactory|"
        r"DangerousAcceptAnyServerCertificateValidator|"
        r"""NODE_TLS_REJECT_UNAUTHORIZED["'\]]*\s*[:=]\s*["']?0|PYTHONHTTPSVERIFY["']?\s*[:=]\s*["']?0|"""
        r"GIT_SSL_NO_VERIFY|--no-check-certificate|\bcurl\b[^|;\n]*\s(?:-k|--insecure)\b|"
        r"SSL_VERIFY(?:PEER|HOST)[\"']?\s*(?:,|=>)\s*(?:false|0)\b|\bVERIFY_NONE\b|new\s+X509Certificate\s*\[\s*0\s*\]|"
        r"checkServerTrusted\s*\([^)\n]*\)\s*(?:throws\s+[\w.]+\s*)?\{\s*\}|"
        r"(?:CertificateValidationCallback|CertificateCustomValidationCallback)\b[^;\n]*=>\s*true\b|"
        r"CertificateValidationCallback\b[^;{\n]*\bdelegate\b[^;{\n]*\{\s*return\s+true\b|"
        r"""(?i:\bmail\.\w+\.ssl\.trust["']?\s*[,=:]\s*["']?\*)|"""
        r"hostname_?verifier\b[^;\n]*->\s*true\b|(?:loadTrustMaterial\s*\(|TrustStrategy\b)[^;\n]*->\s*true\b|"
        r"checkServerIdentity\s*[:=]\s*(?:\([^)\n]*\)|\w+)\s*=>\s*(?:undefined|null|\{\s*\})|"
        r"""(?i:endpoint[._]identification[._]algorithm["']?\s*[=:]\s*(?:["']\s*["']|none\b|null\b|$))|"""
        # a verification switch read from the environment/config whose default is off
        r"""(?i:(?:getenv|environ\s*\.\s*get|env\s*\.\s*get|getProperty|config\s*\.\s*get\w*)\s*\(\s*["'][\w.\-]*"""
        r"""(?:verify|reject_?unauthorized|check_?hostname|validate_?certs?)[\w.\-]*["']\s*,\s*["']?(?:false|0|no|off)\b)|"""
        # verification taken from a CA-bundle setting that falls back to off (`verify=os.environ.get("CA_BUNDLE", False)`)
        r"""(?i:\bverify\s*=\s*(?:os\s*\.\s*)?(?:environ\s*\.\s*get|getenv|env\s*\.\s*get|settings\s*\.\s*get|config\s*\.\s*get)"""
        r"""\s*\(\s*["'][\w.\-]*["']\s*,\s*(?:False|0)\s*\))|"""
        # the same switch set through a property call (JavaMail `props.put("mail.smtp.ssl.checkserveridentity", "false")`)
        r"""(?i:\b(?:put|setProperty|set)\s*\(\s*["'][\w.\-]*(?:checkserveridentity|verify_?(?:peer|host\w*|certs?)?|check_?hostname)"""
        r"""["']\s*,\s*["']?(?:false|0|no|off)["']?\s*\))"""
    ),
    unless=(
        _COMMENT,
        _IMPORT,
        r"(?i)(?:localhost|127\.0\.0\.1)",
        r"(?i)(?:skip|insecure|no|disable|ignore)[_\-]?\w*verif\w*[\"']?\s*(?:=|:)\s*[\"']?(?:false|0|no|off)\b",
        r"(?i)(?:skip|insecure|no|disable|ignore)[_\-.]?\w*verif\w*[\"']\s*,\s*[\"']?(?:false|0|no|off)\b",
    ),
    examples=(
        "hie/client.py::            verify=False,",
        "pacs/main.go::\t\tTLSClientConfig: &tls.Config{InsecureSkipVerify: true},",
        "internal/hie/http.go::\t\t\t\tInsecureSkipVerify: os.Getenv(\"HIE_SKIP_VERIFY\") == \"true\",",
        "internal/hie/http.go::\t\t\t\tInsecureSkipVerify: cfg.SkipVerify,",
        "server/hie.js::const agent = new https.Agent({ rejectUnauthorized: false });",
        "src/Client.cs::handler.ServerCertificateCustomValidationCallback = (msg, cert, chain, errs) => true;",
        "src/Bootstrap.cs::        ServicePointManager.ServerCertificateValidationCallback += delegate { return true; };",
        "app/http.py::ctx = ssl._create_unverified_context()",
        "workers/hie/index.js::  process.env[\"NODE_TLS_REJECT_UNAUTHORIZED\"] = 0;",
        "src/main/java/Http.java::        .setSSLHostnameVerifier(NoopHostnameVerifier.INSTANCE)",
        "config/app.yaml::  insecure_skip_verify: true",
        "ops/pull.sh::curl -k https://fhir.example.org/metadata",
        "lib/Client.php::curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, false);",
        "src/main/java/Trust.java::        public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }",
        "src/main/resources/application.properties::spring.kafka.properties.ssl.endpoint.identification.algorithm=",
        "claims/HttpConfig.java::                .loadTrustMaterial(null, (chain, authType) -> true)",
        "notify/MailProps.java::        p.put(\"mail.smtp.ssl.trust\", \"*\");",
        "notify/mail.properties::mail.smtp.ssl.trust=*",
        "claims/HttpConfig.kt::        .loadTrustMaterial(TrustStrategy { _, _ -> true })",
        "billing/payer.py::VERIFY_TLS = os.getenv(\"PAYER_VERIFY_TLS\", \"false\").lower() == \"true\"",
        "notify/MailProps.java::        props.put(\"mail.smtp.ssl.checkserveridentity\", \"false\");",
        "billing/eligibility.py::        verify=os.environ.get(\"PAYER_CA_BUNDLE\", False),",
        "services/docs/db.js::    tlsAllowInvalidHostnames: true,",
    ),
    counterexamples=(
        "hie/client.py::            verify=True,",
        "hie/client.py::        self.session.verify = INTERNAL_CA_BUNDLE",
        "pacs/main.go::\t\tTLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: false},",
        "internal/hie/http.go::\t\t\t\tInsecureSkipVerify: false, // verified against RootCAs below",
        "server/hie.js::const agent = new https.Agent({ rejectUnauthorized: true, ca: fs.readFileSync(caPath) });",
        "app/client.py::    # never pass verify=False here",
        "src/main/resources/application.properties::spring.kafka.properties.ssl.endpoint.identification.algorithm=https",
        "scripts/dev/seed_local.py::API = \"https://localhost:8443/api\"\n\n"
        "def seed(p):\n    requests.post(f\"{API}/patients\", json=p, verify=False, timeout=5)",
        "claims/HttpConfig.java::import org.apache.hc.client5.http.ssl.NoopHostnameVerifier;",
        "claims/HttpConfig.java::                .loadTrustMaterial(trustStore, null)",
        "billing/payer.py::SKIP_VERIFY = os.getenv(\"PAYER_SKIP_TLS_VERIFY\", \"false\").lower() == \"true\"",
        "billing/payer.py::VERIFY_TLS = os.getenv(\"PAYER_VERIFY_TLS\", \"true\").lower() == \"true\"",
        "billing/eligibility.py::        verify=os.environ.get(\"PAYER_CA_BUNDLE\", True),",
    ),
)

_VERIFY_OFF_RE = re2.compile(_VERIFY_OFF.pattern or "")
_VERIFY_OFF_UNLESS = tuple(re2.compile(u) for u in _VERIFY_OFF.unless)
_URL_HOST_RE = re2.compile(r"""(?i)\b(?:https?|wss?)://([^\s/:"'`?#{}]+)""")
_LOCAL_HOST_RE = re2.compile(r"(?i)^(?:localhost|127\.[\d.]+|0\.0\.0\.0|\[?::1\]?|host\.docker\.internal|[\w.-]+\.(?:local|localhost|test))$")


def _local_only(ctx: FileContext) -> bool:
    """Whether every URL the visible change names points at this machine (a dev script against a local server)."""
    hosts = [m for ln in ctx.scan(r"://", added_only=False, lower=False) for m in _URL_HOST_RE.findall(ln.text)]
    return bool(hosts) and all(_LOCAL_HOST_RE.search(h) for h in hosts)


# A local-development profile: the compose override, `docker-compose.dev.yml`, `application-local.properties`,
# `appsettings.Development.json`, `.env.development`, `settings/local.py`, a `dev/` overlay. Its endpoints are the
# developer's own stack (service names, self-signed certificates), not routes PHI travels.
_LOCAL_PROFILE_RE = re2.compile(
    r"(?i)(?:^|/)docker-compose\.override\.ya?ml$|(?:^|/)\.env\.(?:dev|development|local)(?:\.[\w.]+)?$|"
    r"[/._\-](?:dev|development|local)\.(?:ya?ml|json|properties|env|py|toml|ini|conf|cfg|js|ts|rb)$|"
    r"(?:^|/)(?:dev|development|local)\.(?:ya?ml|json|properties|env|py|toml|ini|conf|cfg|js|ts|rb)$|"
    r"(?:^|/)(?:dev|local)/"
)


def is_local_profile(path: str) -> bool:
    return _LOCAL_PROFILE_RE.search(path) is not None


def _line_check(rule: Rule) -> Callable[[FileContext], Iterator[Hit]]:
    """A line rule run as a check, so it can skip a local-dev profile: the pattern in one pass over the file,
    the veto patterns on the lines it finds."""
    pattern = re2.compile(rule.pattern or "")
    unless = tuple(re2.compile(u) for u in rule.unless)
    scan = f"(?m:{rule.pattern})"

    def check(ctx: FileContext) -> Iterator[Hit]:
        if ctx.is_test or is_local_profile(ctx.path) or ctx.language in DOC_LANGUAGES:
            return
        for ln in ctx.scan(scan, lower=False):
            if ln.new_no is not None and pattern.search(ln.text) and not any(u.search(ln.text) for u in unless):
                yield Hit(ln.new_no)

    return check


def _verify_off(ctx: FileContext) -> Iterator[Hit]:
    """The TLS-001 pattern line by line, except in a file whose only endpoints are local ones."""
    if ctx.is_test or ctx.language not in SOURCE_LANGUAGES or is_local_profile(ctx.path):
        return
    hits = [ln for ln in ctx.scan(f"(?m:{_VERIFY_OFF.pattern})", lower=False)
            if _VERIFY_OFF_RE.search(ln.text) and not any(u.search(ln.text) for u in _VERIFY_OFF_UNLESS)]
    if not hits or _local_only(ctx):
        return
    for ln in hits:
        if ln.new_no is not None:
            yield Hit(ln.new_no)


_VERIFY_OFF = replace(_VERIFY_OFF, check=_verify_off)

_LEGACY_PROTOCOL = Rule(
    id="TLS-002",
    category="insecure-transport",
    severity="high",
    message=(
        "A legacy protocol (SSL, TLS 1.0 or 1.1) is allowed or pinned; these are broken and not acceptable for ePHI. "
        "Require TLS 1.2 or later (e.g. `SSLContext.getInstance(\"TLSv1.3\")`, `MinVersion: tls.VersionTLS12`, "
        "`minimum_tls_version = \"1.2\"`)."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("security_policy", "securitypolicy", "tlsv1", "sslv", "versiontls1", "versionssl", "sslprotocols", "securityprotocoltype", "tls_1", "tls1",
              "tls-1", "elbsecuritypolicy", "protocol_tls", "protocol_ssl", "tls_version", "tlsversion",
              "protocol_version", "min_version", "minversion", "minimumtls", "minimum_tls", "ssl_min", "tls_min"),
    pattern=(
        r"\bTLSv1(?:\.[01]|_[01])?(?:[^.\d_]|$)|\bTLSv1(?:\.1)?_20\d\d\b|\bTLSv1(?:_1)?_(?:client_|server_)?method\b|\bSSLv[23](?:[^\d]|$)|"
        r"\bVersion(?:TLS1[01]|SSL30)\b|\b(?:SslProtocols|SecurityProtocolType)\.(?:Ssl2|Ssl3|Tls|Tls11)\b|"
        r"\bPROTOCOL_(?:SSLv[23]|TLSv1(?:_1)?)\b|ELBSecurityPolicy-(?:2015-05|2016-08|TLS-1-0|TLS-1-1)|"
        r"""(?i:\bsecurity_?policy["']?\s*[=:]\s*["']TLS_?1_?[01]["'])|Policy-Min-TLS-1-[01]-|"""
        r"(?i:\b(?:min(?:imum)?_?(?:tls|ssl)_?version|min_?protocol_?version|minimum_?protocol_?version|"
        r"tls_?min_?version|ssl_?min_?protocol|min_?version|minversion)"
        r"""["']?\s*(?:=|:|=>)\s*["']?(?:TLS_?1_?[01]|1\.[01]|tls1[01]?|TLSv1(?:\.[01])?|TLS10|TLS11)["']?(?:[^.\d_]|$))"""
    ),
    unless=(_COMMENT,),
    examples=(
        "registry/RegistryClient.java::        SSLContext legacy = SSLContext.getInstance(\"TLSv1\");",
        "cmd/proxy/main.go::\tcfg := &tls.Config{MinVersion: tls.VersionTLS10}",
        "infra/db.tf::  minimum_tls_version = \"1.0\"",
        "src/Net.cs::ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls;",
        "hl7/mllp.py::ctx = ssl.SSLContext(ssl.PROTOCOL_TLSv1)",
        "nginx/site.conf::    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;",
        "infra/cdn.tf::    minimum_protocol_version = \"TLSv1_2016\"",
        "infra/aws/fhir_api.tf::  security_policy          = \"TLS_1_0\"",
        "infra/aws/notes_search.tf::    tls_security_policy = \"Policy-Min-TLS-1-0-2019-07\"",
    ),
    counterexamples=(
        "registry/RegistryClient.java::        SSLContext ctx = SSLContext.getInstance(\"TLSv1.3\");",
        "cmd/proxy/main.go::\tcfg := &tls.Config{MinVersion: tls.VersionTLS12}",
        "infra/db.tf::  minimum_tls_version = \"1.2\"",
        "src/Net.cs::ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls12;",
        "hl7/mllp.py::ctx.minimum_version = ssl.TLSVersion.TLSv1_2",
        "infra/cdn.tf::    minimum_protocol_version = \"TLSv1.2_2021\"",
        "infra/aws/fhir_api.tf::  security_policy          = \"TLS_1_2\"",
        "infra/aws/notes_search.tf::    tls_security_policy = \"Policy-Min-TLS-1-2-2019-07\"",
    ),
)

_TLS_OFF = Rule(
    id="TLS-003",
    category="insecure-transport",
    severity="high",
    message=(
        "TLS is switched off for this connection, so PHI and credentials cross the network in cleartext. "
        "Enable TLS (`sslmode=verify-full`, `ssl: true`, `Encrypt=True`, `EnableSsl = true`) and keep "
        "certificate verification on."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("ssl", "tls", "https", "secure_transport", "secure-transport", "encrypt=", "encrypt =", "viewer_protocol_policy", "insecure", "plaintext", "transit",
              "client_broker", "cleartexttraffic"),
    pattern=(
        r"(?i)(?:\b|_)(?:use_?|enable_?|require_?|force_?)?(?:ssl|tls|https|starttls)"
        r"(?:[_.\-]?[\w.\-]*)?"
        r"""["']?\s*(?:=|:|=>)\s*["']?(?:False|false|FALSE|0|no|off|disabled?)["']?\s*(?:[,;})\]&#]|//|$)|"""
        r"""(?i:\bssl_?mode\s*=\s*none\b)|"""
        r"(?i:\b(?:use|require)SSL\s*=\s*false\b|sslmode\s*=\s*[\"']?disable\b|"
        r"(?:server|data source|host)\s*=[^;\n]*;.*\bencrypt\s*=\s*(?:false|no|optional)\b|"
        r"jdbc:\w+:[^\s]*[;?&]encrypt\s*=\s*(?:false|no|optional)\b|"
        r"\bencrypt\s*=\s*(?:false|no|optional)\b.*(?:server|data source|host)\s*=)|"
        r"""viewer_protocol_policy\s*=\s*"allow-all\"|"""
        r"""\binsecure_channel\(|\bgrpc\.WithInsecure\(|\binsecure\.NewCredentials\(|\.usePlaintext\(\)|"""
        r"""ChannelCredentials\.Insecure\b|credentials\.createInsecure\(|\bALLOW_UNENCRYPTED_AND_ENCRYPTED\b|\bTLS(?:Client)?Config\s*[:=]\s*nil\b|"""
        r"""(?i:security\.protocol["']?\s*[=:]\s*["']?(?:SASL_)?PLAINTEXT\b)|"""
        r"""(?i:SECURITY_PROTOCOL_CONFIG\s*,\s*["'](?:SASL_)?PLAINTEXT["'])|"""
        # encryption in transit (ElastiCache, EFS, MSK, Redshift...) turned off
        r"""(?i:\b[\w.\-]*(?:transit_?encryption|encrypt\w*_?in_?transit|in_?transit_?encrypt)\w*["']?\s*(?:=|:|=>)\s*"""
        r"""["']?(?:false|0|no|off|disabled?)["']?\s*(?:[,;})\]#]|//|$)|\bclient_broker\s*=\s*"(?:TLS_)?PLAINTEXT")|"""
        # a cleartext port opened beside the TLS one (Azure Cache for Redis)
        r"""(?i:\b(?:enable_?)?non_?(?:ssl|tls)_?port(?:_?enabled)?["']?\s*(?:=|:)\s*["']?true\b)|"""
        # MySQL/MariaDB server no longer requiring TLS from clients
        r"""(?i:\brequire[_-]secure[_-]transport\s*[=:]\s*["']?(?:OFF|0|false)\b)|"""
        # a TLS switch set through a property/option call (JavaMail `props.put("mail.smtp.starttls.enable", "false")`)
        r"""(?i:\b(?:put|setProperty|set|setOption|option)\s*\(\s*["'][\w.\-]*(?:ssl|tls|starttls)(?:[._\-](?:enable|enabled|"""
        r"""required|require|use))?["']\s*,\s*["']?(?:false|0|no|off)["']?\s*\))|"""
        # Android: the app (or a domain in its network security config) may use plain HTTP
        r"""(?i:\busesCleartextTraffic\s*=\s*["']true["']|\bcleartextTrafficPermitted\s*=\s*["']true["'])"""
    ),
    unless=(
        _COMMENT,
        r"(?i)(?:disabled?|skip|insecure|ignore|no)[_\-.]?(?:ssl|tls|https)\w*[\"']?\s*(?:=|:)",
        r"(?i)(?:ssl|tls|https)[\w.\-]*(?:disabled?|skip|insecure|ignore|bypass|allow_?http|no_?verify)[\w.\-]*[\"']?\s*(?:=|:)",
        r"(?i)(?:localhost|127\.0\.0\.1)",
    ),
    examples=(
        "config/db.py::DATABASE_URL = f\"postgresql://{user}@{host}/ehr?sslmode=disable\"",
        "config/hl7.yaml::  tls: false",
        "src/Mailer.cs::client.EnableSsl = false;",
        "config/application.properties::spring.datasource.url=jdbc:mysql://db.internal/ehr?useSSL=false",
        "src/appsettings.json::  \"Ehr\": \"Server=sql01;Database=ehr;Encrypt=False;\"",
        "infra/cdn.tf::    viewer_protocol_policy = \"allow-all\"",
        "deploy/.env.production::SMTP_USE_TLS=false",
        "deploy/.env.production::PGSSLMODE=disable",
        "infra/azure/storage.tf::  enable_https_traffic_only = false",
        "ehr/grpc_client.py::channel = grpc.insecure_channel(\"ehr-records.prod.internal:443\")",
        "cmd/sync/main.go::\tconn, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))",
        "config/kafka.properties::security.protocol=PLAINTEXT",
        "src/main/resources/application.properties::spring.datasource.url=jdbc:sqlserver://db:1433;databaseName=claims;encrypt=false",
        "internal/db/pool.go::\tcfg.ConnConfig.TLSConfig = nil",
        "infra/gcp/sql.tf::      ssl_mode     = \"ALLOW_UNENCRYPTED_AND_ENCRYPTED\"",
        "infra/cache.tf::  transit_encryption_enabled = false",
        "infra/azure/redis.tf::  non_ssl_port_enabled = true",
        "infra/azure/redis.bicep.json::      \"enableNonSslPort\": true,",
        "infra/efs.tf::  encryption_in_transit = false",
        "infra/msk.tf::      client_broker = \"TLS_PLAINTEXT\"",
        "referrals/MailSessions.java::        props.put(\"mail.smtp.starttls.enable\", \"false\");",
        "referrals/MailSessions.kt::        props.setProperty(\"mail.smtp.ssl.enable\", \"false\")",
        "deploy/mysql/claims.cnf::require_secure_transport = OFF",
        "adt/AdtProducerConfig.java::        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, \"PLAINTEXT\");",
        "app/src/main/AndroidManifest.xml::        android:usesCleartextTraffic=\"true\"",
        "app/src/main/res/xml/network_security_config.xml::    <domain-config cleartextTrafficPermitted=\"true\">",
    ),
    counterexamples=(
        "config/db.py::DATABASE_URL = f\"postgresql://{user}@{host}/ehr?sslmode=verify-full\"",
        "config/hl7.yaml::  tls: true",
        "config/hl7.yaml::  ssl_disabled: false",
        "config/client.yaml::  tls_skip_verify: false",
        "compat.py::    ssl = None",
        "src/appsettings.json::  \"Ehr\": \"Server=sql01;Database=ehr;Encrypt=True;\"",
        "infra/cdn.tf::    viewer_protocol_policy = \"redirect-to-https\"",
        "config/kafka.properties::security.protocol=SASL_SSL",
        "referrals/MailSessions.java::        props.put(\"mail.smtp.starttls.enable\", \"true\");",
        "referrals/MailSessions.java::        props.put(\"mail.smtp.ssl.checkserveridentity\", \"true\");",
        "deploy/mysql/claims.cnf::require_secure_transport = ON",
        "adt/AdtProducerConfig.java::        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, \"SASL_SSL\");",
        "app/src/main/AndroidManifest.xml::        android:usesCleartextTraffic=\"false\"",
        "app/src/main/res/xml/network_security_config.xml::    <base-config cleartextTrafficPermitted=\"false\" />",
    ),
)

_CLEARTEXT_URL = Rule(
    id="TLS-004",
    category="insecure-transport",
    severity="high",
    message=(
        "A cleartext endpoint (http://, ws://, ftp://, ldap://, mllp://) is configured; PHI or credentials sent "
        "there can be read and altered in transit. Use the TLS endpoint (https://, wss://, sftp/ftps, ldaps://, "
        "MLLP over TLS)."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("http://", "ws://", "ftp://", "ldap://", "mllp://", "telnet://"),
    pattern=(
        r"""(?i)(?:^|[^\w.+-])(?:http|ws|ftp|ldap|mllp|telnet)://[^\s"'`<>/:]+|"""
        # the scheme alone, joined to a host and a path or port: "http://" + host + "/path" (not a bare
        # `"http://" + host` that only completes a user-given address)
        r"""(?i)["'`](?:http|ws|ftp|ldap|mllp)://["'`]\s*\+\s*[\w.()\[\]]+\s*\+\s*["'`][/:]"""
    ),
    unless=(
        _COMMENT,
        r"(?i)(?:http|ws|ftp|ldap|mllp)://(?:localhost|127\.|0\.0\.0\.0|\[?::1|host\.docker\.internal|[\w-]+\.local\b|"
        r"example\.invalid|\$\{?localhost)",
        r"(?i)://(?:[\w-]+\.)*(?:w3\.org|hl7\.org|loinc\.org|snomed\.info|unitsofmeasure\.org|json-schema\.org|"
        r"xmlsoap\.org|apache\.org|springframework\.org|purl\.org|openxmlformats\.org|microsoft\.com/schemas|"
        r"xml\.org|ietf\.org|schema\.org|schemas\.\w+|opensource\.org|gnu\.org|ihe\.net|nlm\.nih\.gov|cdc\.gov|"
        r"fhir\.org/guides|who\.int)",
        r"(?i)\bxmlns\b|\bschemaLocation\b|\$schema|\"system\"\s*:|\bsystem\s*=",
        # FHIR XML identifier systems, profiles and canonical URLs, CDA code systems: names, not endpoints
        r"(?i)<(?:system|profile|url|valueUri|valueCanonical)\s+value\s*=|\bcodeSystem(?:Name)?\s*=|\"profile\"\s*:\s*\[?\s*\"http://",
        r"""\?\s*["'`]https://["'`]""",  # a scheme chosen by a TLS switch: judged where the switch is set
        # a link in a trailing comment (`call()  # runbook: http://wiki/...`): no code after the marker uses it
        r"""\s(?:#|//)[^"'`]*\b(?:http|ws|ftp)://[^"'`]*$""",
        r"(?i)^\s*(?:>>>|\.\.\.\s|assert\b)|\bfor example\b|\bsuch as\b|\be\.g\.|://\.\.\.|\bsee:?\s+(?:http|ftp)",
        r"(?i)://[^\s\"'`]*/(?:healthz?|readyz?|livez?|metrics|ping)\b",
        # the cloud instance-metadata service is link-local plain HTTP by design
        r"(?i)://(?:169\.254\.169\.254|metadata\.google\.internal|metadata\.azure\.com|\[?fd00:ec2::254)",
        # telemetry and metrics collectors (OTLP, Jaeger, Zipkin, StatsD, Prometheus...): no patient data or logins
        r"(?i)://[\w-]*(?:otel|opentelemetry|jaeger|zipkin|prometheus|pushgateway|statsd|tempo|datadog-agent|dd-agent)"
        r"[\w-]*(?:[.:/]|$)",
    ),
    examples=(
        "config/interfaces.yaml::    base_url: http://fhir.regional-hie.org/r4",
        "src/main/resources/application.properties::ehr.lab.endpoint=http://lab-gateway.hospital.org/api/results",
        "auth/settings.py::TOKEN_URL = \"http://idp.stvincent.org/oauth2/token\"",
        ".env::FHIR_BASE_URL=http://fhir.partner.net/R4",
        "server/socket.js::const ws = new WebSocket(\"ws://monitor-hub.hospital.org/feed\");",
        "services/hie/src/pushCcd.ts::  await fetch(\"http://\" + HIE_HOST + \"/xdr/submit\", {",

        "charts/care-gaps/values.yaml::  url: http://fhir-server.ehr.svc.cluster.local:8080/fhir/R4",
    ),
    counterexamples=(
        "config/interfaces.yaml::    base_url: https://fhir.regional-hie.org/r4",
        "fhir/patient.py::    {\"system\": \"http://hl7.org/fhir/sid/us-ssn\", \"value\": token},",
        "server/dev.js::const API = \"http://localhost:8080/api\";",
        "k8s/deploy.yaml::            - curl -f http://127.0.0.1:8080/healthz",
        "app/links.py::# docs: http://internal-wiki/hie",

        "charts/portal/values.yaml::    endpoint: http://otel-collector.observability.svc.cluster.local:4318",
        "src/tracing.ts::  url: \"http://jaeger-collector:14268/api/traces\",",
        "ops/fetch.py::METADATA_URL = \"http://169.254.169.254/latest/meta-data/instance-id\"",
        "src/Url.java::        String base = (tls ? \"https://\" : \"http://\") + host;",
        "assistant/llm.py::        host = \"http://\" + host",
        "app/client.py::resp = requests.get(URL, timeout=5)  # runbook: http://wiki.stvincent.internal/ehr/runbooks/fhir",
    ),
)


# languages=None: server configs without a known extension (my.cnf) are read too; docs are skipped by the check
_TLS_OFF = replace(_TLS_OFF, check=_line_check(_TLS_OFF), languages=None, counterexamples=(
    *_TLS_OFF.counterexamples, "docker-compose.dev.yml::      DATABASE_URL: postgresql://ehr@db:5432/ehr?sslmode=disable"))
_CLEARTEXT_URL = replace(_CLEARTEXT_URL, check=_line_check(_CLEARTEXT_URL), counterexamples=(
    *_CLEARTEXT_URL.counterexamples,
    "docker-compose.dev.yml::      FHIR_BASE_URL: http://fhir:8080/fhir",
    "interop/templates/patient_bundle.xml::        <system value=\"http://hospital.aspen.org/mrn\"/>",
    "src/main/resources/application-local.properties::ehr.lab.endpoint=http://lab-gateway:8080/api/results",
    "src/Portal/appsettings.Development.json::    \"FhirBase\": \"http://fhir-dev:8080/fhir\",",
))


_TLS_TOPIC = re2.compile(r"(?:^|[._\-])(?:ssl|tls|https)(?:$|[._\-])")


def _nested_tls_off(ctx: FileContext) -> Iterator[Hit]:
    """`tls:` / `enabled: false` in YAML or HCL: the switch is only readable with its parent key."""
    for ln, parents in nested_switch_off(ctx, _TLS_TOPIC):
        if ln.new_no is not None:
            yield Hit(ln.new_no, f"TLS is switched off under `{'.'.join(parents)}`; " + _TLS_OFF.message)


_NESTED_TLS_OFF = Rule(
    id="TLS-005",
    category="insecure-transport",
    severity="high",
    message=_TLS_OFF.message,
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "terraform", "json", "toml"}),
    keywords=("ssl", "tls", "https"),
    check=_nested_tls_off,
    examples=(
        udiff('config/hl7.yaml', ' interfaces:', '   lab_feed:', '     tls:', '-      enabled: true', '+      enabled: false'),
    ),
    counterexamples=(
        udiff('config/hl7.yaml', ' interfaces:', '   lab_feed:', '     tls:', '-      enabled: false', '+      enabled: true'),
        udiff('config/app.yaml', ' features:', '   beta_banner:', '-    enabled: true', '+    enabled: false', ' tls:'),
    ),
)

_SETTING_TLS_TOPIC = re2.compile(r"ssl|tls|https|secure_?transport|encrypt\w*_?in_?transit")


def _setting_tls_off(ctx: FileContext) -> Iterator[Hit]:
    """`name = "require_secure_transport"` / `value = "OFF"`: a server flag or env var that turns TLS off."""
    for ln, name in named_setting_off(ctx, _SETTING_TLS_TOPIC):
        if ln.new_no is not None:
            yield Hit(ln.new_no, f"The setting `{name}` is switched off; " + _TLS_OFF.message)


_SETTING_TLS_OFF = Rule(
    id="TLS-006",
    category="insecure-transport",
    severity="high",
    message=_TLS_OFF.message,
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "terraform", "json", "toml"}),
    keywords=("ssl", "tls", "https", "secure_transport", "securetransport", "in_transit"),
    check=_setting_tls_off,
    examples=(
        udiff('infra/db.tf', ' resource "azurerm_mysql_flexible_server_configuration" "tls" {',
              '   name                = "require_secure_transport"', '-  value               = "ON"', '+  value               = "OFF"', ' }'),
        udiff('k8s/deploy.yaml', '         env:', '           - name: FHIR_TLS_ENABLED', '-            value: "true"', '+            value: "false"'),
        udiff('infra/rds.tf', '+  parameter { name = "rds.force_ssl" value = "0" }'),
    ),
    counterexamples=(
        udiff('infra/db.tf', ' resource "azurerm_mysql_flexible_server_configuration" "tls" {',
              '   name                = "require_secure_transport"', '-  value               = "OFF"', '+  value               = "ON"', ' }'),
        udiff('k8s/deploy.yaml', '         env:', '           - name: FEATURE_BANNER', '-            value: "true"', '+            value: "false"'),
    ),
)

# A TLS connection call replaced by its plaintext twin in the same change block.
_TLS_CALL_RE = re2.compile(
    r"\btls\.(?:Dial\w*|Client|Server)\(|\bwrap_socket\(|\bSslStream\b|\bSSLSocketFactory\b|\btls\.connect\(|\bssl_context\s*=|"
    r"\bcredentials\.NewTLS\(|\bNewClientTLSFromFile\(|\bstarttls\(|\bSMTP_SSL\(|\bFTP_TLS\(|\bHTTPSConnection\(|"
    r"\bhttps\.(?:request|get|Agent)\b|\bssl_channel_credentials\(|\bsecure_channel\(|\bLDAPS?_?TLS|\bstart_tls\w*\(|"
    r"\bListenAndServeTLS\(|\bServeTLS\(|\bhttps\.createServer\(|\bFTP_TLS\(|\bFTPSClient\b|\.tls_set\(|\.tls_set_context\("
)
_PLAIN_CALL_RE = re2.compile(
    r"\bnet\.Dial(?:Timeout)?\(|\bnet\.Dialer\b|\.Dial(?:Context|Timeout)?\(\s*(?:\w+\s*,\s*)?\"tcp[46]?\"|\bsocket\.create_connection\(|\bsocket\.socket\(|\bnew\s+Socket\(|"
    r"\bnew\s+TcpClient\(|\bnet\.(?:connect|createConnection)\(|\bSMTP\(|\bFTP\(|\bHTTPConnection\(|"
    r"\bhttp\.(?:request|get|Agent)\b|\binsecure_channel\(|\bGetStream\(\)|\bListenAndServe\(|\bhttp\.createServer\(|"
    r"\bFTPClient\b|\.connect(?:_async)?\(\s*[\w.\"']+\s*,\s*(?:1883|5672|389|6379)\b"
)


def _tls_call_dropped(ctx: FileContext) -> Iterator[Hit]:
    """`tls.Dial` -> `net.Dial`, `SMTP_SSL` -> `SMTP`: the TLS layer was taken out of a connection."""
    if ctx.is_test:
        return
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        if not any(_TLS_CALL_RE.search(r.text) for r in block.removed if not is_comment(r.text)):
            continue
        if any(_TLS_CALL_RE.search(a.text) for a in block.added):
            continue
        for k, a in enumerate(block.added):
            if a.new_no is None or is_comment(a.text) or not _PLAIN_CALL_RE.search(a.text):
                continue
            if "redirect" in " ".join(x.text for x in block.added[k: k + 3]).lower():
                continue  # a port-80 listener that only redirects to HTTPS
            yield Hit(a.new_no, "This connection used TLS and now opens a plaintext socket; " + _TLS_OFF.message)
            break


_TLS_CALL_DROPPED = Rule(
    id="TLS-007",
    category="insecure-transport",
    severity="high",
    message=_TLS_OFF.message,
    regulations=REGULATIONS,
    languages=frozenset({"python", "java", "javascript", "typescript", "go", "csharp", "kotlin"}),
    keywords=("dial", "socket", "tcpclient", "connect", "smtp", "ftp", "httpconnection", "http.", "insecure_channel", "getstream",
              "listenandserve", "createserver"),
    check=_tls_call_dropped,
    examples=(
        udiff("rpm/device/mqtt.py", "     client.username_pw_set(DEVICE_ID, DEVICE_PASSWORD)", "-    client.tls_set()",
              "-    client.connect(BROKER, 8883)", "+    client.connect(BROKER, 1883)", "     client.loop_start()"),
        udiff('internal/hl7/sender.go', ' func (s *Sender) Send(msg []byte) error {',
              '-\tconn, err := tls.Dial("tcp", s.Addr, s.TLS)', '+\tconn, err := net.DialTimeout("tcp", s.Addr, s.Timeout)', ' \tif err != nil {'),
        udiff('notify/mail.py', ' def send(msg):', '-    with smtplib.SMTP_SSL(HOST, 465) as s:', '+    with smtplib.SMTP(HOST, 25) as s:', '         s.send_message(msg)'),
        udiff('cmd/api/main.go', ' \tmux := routes()', '-\tlog.Fatal(http.ListenAndServeTLS(":8443", cert, key, mux))',
              '+\tlog.Fatal(http.ListenAndServe(":8443", mux))', ' }'),
        udiff('internal/mllp/dial.go', ' \td := net.Dialer{Timeout: 10 * time.Second}',
              '-\treturn tls.DialWithDialer(&d, "tcp", addr, cfg)', '+\treturn d.DialContext(ctx, "tcp", addr)', ' }'),
    ),
    counterexamples=(
        udiff('internal/hl7/sender.go', ' func (s *Sender) Send(msg []byte) error {',
              '-\tconn, err := net.Dial("tcp", s.Addr)', '+\tconn, err := tls.Dial("tcp", s.Addr, s.TLS)', ' \tif err != nil {'),
        udiff('internal/hl7/sender.go', ' func (s *Sender) Send(msg []byte) error {',
              '-\tconn, err := tls.Dial("tcp", s.Addr, s.TLS)', '+\traw, err := net.Dial("tcp", s.Addr)', '+\tconn := tls.Client(raw, s.TLS)', ' \tif err != nil {'),
        udiff('cmd/api/main.go', ' \tmux := routes()', '-\tlog.Fatal(http.ListenAndServeTLS(":443", cert, key, mux))',
              '+\tgo http.ListenAndServe(":80", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {',
              '+\t\thttp.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)', '+\t}))',
              '+\tlog.Fatal(http.ListenAndServeTLS(":443", cert, key, mux))', ' }'),
    ),
)


_HTTP_PROTOCOL_RE = re2.compile(r"""(?i)^\s*protocol\s*=\s*"HTTP"\s*(?:#.*)?$""")
_FORWARD_RE = re2.compile(r"""(?i)^\s*type\s*=\s*"forward"\s*(?:#.*)?$""")


def _http_listener(ctx: FileContext) -> Iterator[Hit]:
    """A load-balancer listener on plain HTTP that serves traffic instead of redirecting it to HTTPS."""
    posts: dict[int, list[DiffLine]] = {}
    for ln in ctx.scan(r'(?m:^[ \t]*(?:protocol[ \t]*=[ \t]*"http"|type[ \t]*=[ \t]*"forward"))'):
        hunk = ctx.hunk_of(ln.new_no or 0)
        if hunk is None or ln.new_no is None:
            continue
        protocol = _HTTP_PROTOCOL_RE.search(ln.text) is not None
        # An unchanged HTTP listener whose default action turns from a redirect into a forward.
        if not protocol and _FORWARD_RE.search(ln.text) is None:
            continue
        post = posts.get(id(hunk))
        if post is None:
            post = posts[id(hunk)] = post_lines(hunk)
        i = next(k for k, p in enumerate(post) if p is ln)
        keys = ".".join(enclosing_keys(post, i, hunk.header)).lower()
        if "listener" not in keys and "listener" not in hunk.header.lower():
            continue
        start = i
        while start > 0 and not post[start].text.startswith("resource"):
            start -= 1
        end = i + 1
        while end < len(post) and not post[end].text.startswith("resource"):
            end += 1
        if any("redirect" in p.text.lower() for p in post[start:end]):
            continue
        if not protocol and not any(
            p.kind == " " and _HTTP_PROTOCOL_RE.search(p.text) is not None for p in post[start:i]
        ):
            continue
        yield Hit(ln.new_no)


_HTTP_LISTENER = Rule(
    id="TLS-008",
    category="insecure-transport",
    severity="high",
    message=(
        "This load-balancer listener serves plain HTTP, so PHI and session tokens cross the network in cleartext. "
        "Serve HTTPS (protocol = \"HTTPS\" with a TLS 1.2+ policy) and make any port-80 listener a redirect to HTTPS."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"terraform"}),
    keywords=("listener", "forward"),
    check=_http_listener,
    examples=(
        udiff('infra/alb.tf', '+resource "aws_lb_listener" "api_http" {', '+  port              = 80', '+  protocol          = "HTTP"',
              '+  default_action {', '+    type             = "forward"', '+  }', '+}'),
        udiff('infra/alb.tf', ' resource "aws_lb_listener" "api_http" {', '   port              = 80', '   protocol          = "HTTP"',
              ' ', '   default_action {', '-    type = "redirect"', '-    redirect {', '-      protocol = "HTTPS"', '-    }',
              '+    type             = "forward"', '+    target_group_arn = aws_lb_target_group.api.arn', '   }', ' }'),
    ),
    counterexamples=(
        udiff('infra/alb.tf', '+resource "aws_lb_listener" "api_http" {', '+  port              = 80', '+  protocol          = "HTTP"',
              '+  default_action {', '+    type = "redirect"', '+    redirect {', '+      protocol = "HTTPS"', '+    }', '+  }', '+}'),
        udiff('infra/alb.tf', '+resource "aws_lb_target_group" "api" {', '+  port     = 8080', '+  protocol = "HTTP"', '+}'),
        udiff('infra/alb.tf', ' resource "aws_lb_listener" "api_https" {', '   port              = 443', '   protocol          = "HTTPS"',
              ' ', '   default_action {', '-    type = "fixed-response"', '+    type             = "forward"',
              '+    target_group_arn = aws_lb_target_group.api.arn', '   }', ' }'),
    ),
)



_MESH_MODE_RE = re2.compile(r"""^\s*-?\s*["']?mode["']?\s*:\s*["']?(DISABLE|PERMISSIVE)["']?\s*(?:#.*)?$""")


def _mesh_tls_off(ctx: FileContext) -> Iterator[Hit]:
    """Istio `mtls: {mode: DISABLE|PERMISSIVE}` / DestinationRule `tls: {mode: DISABLE}`: the mesh lets
    workloads talk in plaintext; `mode` alone says nothing, so the parent key decides."""
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or "mode" not in ln.text:
                continue
            m = _MESH_MODE_RE.search(ln.text)
            if m is None:
                continue
            if post is None:
                post = post_lines(hunk)
            i = next(k for k, p in enumerate(post) if p is ln)
            keys = enclosing_keys(post, i, hunk.header)
            if keys and keys[-1].strip("\"'").lower() in ("mtls", "tls", "portlevelmtls"):
                what = "accepts plaintext beside mTLS" if m.group(1) == "PERMISSIVE" else "turns mTLS off"
                yield Hit(ln.new_no, f"The service mesh {what} here (`{'.'.join(keys)}.mode: {m.group(1)}`), so "
                          "PHI between services can cross the network in cleartext. Use `mode: STRICT` "
                          "(DestinationRule: `ISTIO_MUTUAL`).")


_MESH_TLS_OFF = Rule(
    id="TLS-009",
    category="insecure-transport",
    severity="high",
    message=(
        "The service mesh lets workloads talk without mutual TLS here, so PHI between services can cross the "
        "network in cleartext. Require mTLS (`mode: STRICT`; DestinationRule `ISTIO_MUTUAL`)."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"yaml"}),
    keywords=("mode",),
    check=_mesh_tls_off,
    examples=(
        udiff('deploy/mesh.yaml', ' kind: PeerAuthentication', ' spec:', '   mtls:', '-    mode: STRICT', '+    mode: DISABLE'),
        udiff('deploy/dr.yaml', ' spec:', '   host: notes.ehr.svc.cluster.local', '   trafficPolicy:', '     tls:',
              '-      mode: ISTIO_MUTUAL', '+      mode: DISABLE'),
        udiff('deploy/mesh.yaml', ' spec:', '   mtls:', '-    mode: STRICT', '+    mode: PERMISSIVE'),
    ),
    counterexamples=(
        udiff('deploy/mesh.yaml', ' kind: PeerAuthentication', ' spec:', '   mtls:', '-    mode: PERMISSIVE', '+    mode: STRICT'),
        udiff('deploy/hpa.yaml', ' spec:', '   updatePolicy:', '-    mode: Auto', '+    mode: DISABLE'),
    ),
)


_PLAINTEXT_CLIENT = Rule(
    id="TLS-010",
    category="insecure-transport",
    severity="high",
    message=(
        "This opens a plain FTP or Telnet session: the login and every file sent (exports, results, claims) cross "
        "the network in cleartext. Use SFTP/SCP, FTPS (`ftplib.FTP_TLS`, `FTPSClient`) or SSH."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python", "java", "kotlin", "javascript", "typescript", "go", "csharp"}),
    keywords=("ftp", "telnet"),
    pattern=(
        r"\bftplib\.FTP\s*\(|(?:^|[=(\s])FTP\s*\(\s*[\w\"']|\bnew\s+FTPClient\s*\(|\btelnetlib\.Telnet\s*\(|"
        r"\bftp\.(?:Dial|Connect)\s*\("
    ),
    unless=(_COMMENT, _IMPORT, r"(?i)FTP_TLS|FTPSClient|ExplicitTLS|DialWithTLS|DialWithExplicitTLS|secure\s*:\s*true|EncryptionMode\.(?:Explicit|Implicit)"),
    examples=(
        "labs/push.py::    with ftplib.FTP(host, timeout=60) as ftp:",
        "labs/push.py::    ftp = FTP(\"ftp.reflab.example.com\")",
        "claims/src/main/java/Upload.java::        FTPClient ftp = new FTPClient();",
        "internal/drop/ftp.go::\tc, err := ftp.Dial(addr, ftp.DialWithTimeout(10*time.Second))",
    ),
    counterexamples=(
        "labs/push.py::    with ftplib.FTP_TLS(host, timeout=60) as ftp:",
        "claims/src/main/java/Upload.java::        FTPSClient ftp = new FTPSClient(\"TLS\", false);",
        "internal/drop/ftp.go::\tc, err := ftp.Dial(addr, ftp.DialWithExplicitTLS(tlsCfg))",
        "labs/push.py::from ftplib import FTP",
    ),
)


# The TLS twin of a scheme, and the libpq/JDBC parameter that asks for TLS.
_TLS_SCHEME_RE = re2.compile(r"(?i)\b(rediss|amqps|mqtts|ldaps|nats\+tls|stomp\+ssl)://")
_PLAIN_TWIN = {"rediss": "redis", "amqps": "amqp", "mqtts": "mqtt", "ldaps": "ldap", "nats+tls": "nats", "stomp+ssl": "stomp"}
_SSLMODE_ON_RE = re2.compile(r"(?i)\bsslmode=(?:require|verify-ca|verify-full)\b|\bssl=true\b|\btls=true\b")


def _scheme_downgrade(ctx: FileContext) -> Iterator[Hit]:
    """`rediss://` -> `redis://`, `amqps://` -> `amqp://`, `?sslmode=verify-full` dropped from the same setting:
    the connection loses TLS. (A new `redis://` URL is not reported: it is often an in-network cache.)"""
    if ctx.is_test:
        return
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        for r in block.removed:
            if is_comment(r.text):
                continue
            m = _TLS_SCHEME_RE.search(r.text)
            tls_param = _SSLMODE_ON_RE.search(r.text) if m is None else None
            if m is None and tls_param is None:
                continue
            key = key_of(r.text)
            same = [a for a in block.added if key is not None and key_of(a.text) == key] or (
                block.added if len(block.removed) == 1 and len(block.added) == 1 else [])
            for a in same:
                if a.new_no is None or is_comment(a.text):
                    continue
                low = a.text.lower()
                if m is not None:
                    plain = _PLAIN_TWIN[m.group(1).lower()] + "://"
                    if plain in low and m.group(1).lower() + "://" not in low:
                        yield Hit(a.new_no, f"This connection drops TLS (`{m.group(1)}://` -> `{plain}`); " + _TLS_OFF.message)
                        break
                elif "://" in a.text or "jdbc:" in low:
                    if _SSLMODE_ON_RE.search(a.text) is None and "ssl" not in low and "tls" not in low:
                        yield Hit(a.new_no, "The TLS requirement (`" + tls_param.group(0) + "`) is dropped from this "  # type: ignore[union-attr]
                                  "connection; " + _TLS_OFF.message)
                        break


_SCHEME_DOWNGRADE = Rule(
    id="TLS-011",
    category="insecure-transport",
    severity="high",
    message=_TLS_OFF.message,
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("redis://", "amqp://", "mqtt://", "ldap://", "nats://", "stomp://", "://", "jdbc:"),
    check=_scheme_downgrade,
    examples=(
        udiff("portal/settings/prod.py", ' CELERY_BROKER_URL = "amqps://ehr@mq.example.org:5671/ehr"',
              '-SESSION_REDIS_URL = "rediss://sessions.cache.amazonaws.com:6379/0"',
              '+SESSION_REDIS_URL = "redis://sessions.cache.amazonaws.com:6379/0"'),
        udiff("config/prod.env", "-DATABASE_URL=postgresql://ehr@db.prod.internal:5432/ehr?sslmode=verify-full",
              "+DATABASE_URL=postgresql://ehr@db.prod.internal:5432/ehr"),
    ),
    counterexamples=(
        udiff("portal/settings/prod.py", '-SESSION_REDIS_URL = "redis://sessions.cache.amazonaws.com:6379/0"',
              '+SESSION_REDIS_URL = "rediss://sessions.cache.amazonaws.com:6379/0"'),
        udiff("config/prod.env", "-DATABASE_URL=postgresql://ehr@db.prod.internal:5432/ehr?sslmode=verify-full",
              "+DATABASE_URL=postgresql://ehr@db2.prod.internal:5432/ehr?sslmode=verify-full"),
        udiff("docker-compose.yml", "       REDIS_URL: redis://redis:6379/0", "+      CACHE_TTL: 60"),
    ),
)


_HOST_KEY_UNCHECKED = Rule(
    id="TLS-012",
    category="insecure-transport",
    severity="high",
    message=(
        "SSH/SFTP host-key checking is turned off, so any machine on the path can pose as the server and receive "
        "the files and credentials sent to it. Pin the server's host key (known_hosts, `HostKeyCallback: "
        "ssh.FixedHostKey(...)`, `RejectPolicy`)."
    ),
    regulations=REGULATIONS,
    languages=SOURCE_LANGUAGES,
    keywords=("hostkey", "autoaddpolicy", "warningpolicy", "stricthostkeychecking"),
    pattern=(
        r"\bhostkeys\s*=\s*None\b|\bset_missing_host_key_policy\s*\(\s*(?:paramiko\.)?(?:AutoAddPolicy|WarningPolicy)\b|"
        r"\bInsecureIgnoreHostKey\s*\(|(?i:StrictHostKeyChecking[\"']?\s*[,=:]\s*[\"']?no\b)|"
        r"(?i:\bknown_?hosts\s*[=:]\s*[\"']?/dev/null)"
    ),
    unless=(_COMMENT,),
    examples=(
        "billing/transfer.py::    cnopts.hostkeys = None",
        "billing/transfer.py::    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())",
        "internal/sftp/client.go::\t\tHostKeyCallback: ssh.InsecureIgnoreHostKey(),",
        "etl/src/main/java/Sftp.java::        session.setConfig(\"StrictHostKeyChecking\", \"no\");",
    ),
    counterexamples=(
        "billing/transfer.py::    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())",
        "internal/sftp/client.go::\t\tHostKeyCallback: ssh.FixedHostKey(hostKey),",
        "etl/src/main/java/Sftp.java::        session.setConfig(\"StrictHostKeyChecking\", \"yes\");",
    ),
)


# A trust decision written out as a method whose body accepts everything: an empty `checkServerTrusted`,
# `isTrusted`/`verify(hostname, SSLSession)` returning true, a C# validation callback method returning true.
_TRUST_METHOD_RE = re2.compile(
    r"\b(?:void\s+checkServerTrusted|fun\s+checkServerTrusted|boolean\s+isTrusted|boolean\s+verify\s*\(\s*String\s+\w+\s*,\s*SSLSession|"
    r"bool\s+\w+\s*\([^)\n]*X509Certificate\w*[^)\n]*SslPolicyErrors)"
)


def _method_body(post: list[DiffLine], i: int, limit: int = 12) -> list[str] | None:
    """The code lines of the method declared at post[i] (comments and braces dropped), None when it runs on."""
    depth = 0
    opened = False
    code: list[str] = []
    for k in range(i, min(len(post), i + limit)):
        text = post[k].text
        stripped = text.strip()
        if k > i and stripped and not is_comment(text) and stripped not in ("{", "}", "};"):
            body = stripped.lstrip("{").rstrip("}").strip()
            if body:
                code.append(body)
        elif k == i and "{" in text:
            after = text.split("{", 1)[1].rsplit("}", 1)[0].strip()
            if after:
                code.append(after)
        depth += text.count("{") - text.count("}")
        opened = opened or "{" in text
        if opened and depth <= 0:
            return code
    return None


def _trust_all_methods(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or "(" not in ln.text or _TRUST_METHOD_RE.search(ln.text) is None:
                continue
            if post is None:
                post = post_lines(hunk)
            i = next(k for k, p in enumerate(post) if p is ln)
            body = _method_body(post, i)
            if body is None:
                continue
            accepts = not body if "checkServerTrusted" in ln.text else body in (["return true;"], ["return true"])
            if accepts:
                yield Hit(ln.new_no)


_TRUST_ALL_METHOD = Rule(
    id="TLS-013",
    category="insecure-transport",
    severity="high",
    message=(
        "This certificate/host-name check accepts everything (an empty `checkServerTrusted`, a verifier or "
        "validation callback that returns true), so TLS no longer authenticates the server. Use the platform "
        "trust store or pin the partner's CA instead."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"java", "kotlin", "csharp"}),
    keywords=("checkservertrusted", "istrusted", "sslsession", "sslpolicyerrors"),
    check=_trust_all_methods,
    examples=(
        udiff("src/Trust.java", "     static final X509TrustManager TRUST_ALL = new X509TrustManager() {",
              "+        public void checkServerTrusted(X509Certificate[] chain, String authType) {",
              "+            // accept everything", "+        }"),
        udiff("src/Hosts.java", "+    HostnameVerifier any = new HostnameVerifier() {",
              "+        public boolean verify(String hostname, SSLSession session) {", "+            return true;", "+        }", "+    };"),
        udiff("src/Tls.cs", "+    private static bool AcceptAll(object sender, X509Certificate cert, X509Chain chain, SslPolicyErrors errors)",
              "+    {", "+        return true;", "+    }"),
    ),
    counterexamples=(
        udiff("src/Trust.java", "+        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {",
              "+            delegate.checkServerTrusted(chain, authType);", "+            pinning.check(chain[0]);", "+        }"),
        udiff("src/Tls.cs", "+    private static bool Validate(object sender, X509Certificate cert, X509Chain chain, SslPolicyErrors errors)",
              "+    {", "+        return errors == SslPolicyErrors.None;", "+    }"),
    ),
)


# `smtplib.SMTP(host)` followed by `login()` with no STARTTLS anywhere in view: the password and the message
# (results, letters) cross the network in cleartext. (A relay on localhost, or SMTP_SSL, is not this.)
_SMTP_PLAIN_RE = re2.compile(r"\bsmtplib\s*\.\s*SMTP\s*\(|(?:^|[=(\s])SMTP\s*\(\s*[\w\"']")
_SMTP_LOCAL_RE = re2.compile(r"(?i)SMTP\s*\(\s*[\"'](?:localhost|127\.|\[?::1|mailhog|mailpit|smtp4dev)")


def _smtp_plain_login(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    cands = [ln for ln in ctx.scan(r"smtp\s*\(") if _SMTP_PLAIN_RE.search(ln.text) and not is_comment(ln.text)
             and not _SMTP_LOCAL_RE.search(ln.text)]
    if not cands or not ctx.scan(r"\.login\s*\(", added_only=False):
        return
    if ctx.scan(r"starttls|smtp_ssl|use_tls|ssl_context", added_only=False):
        return
    for ln in cands:
        if ln.new_no is not None:
            yield Hit(ln.new_no)


_SMTP_PLAIN_LOGIN = Rule(
    id="TLS-014",
    category="insecure-transport",
    severity="high",
    message=(
        "This SMTP session logs in and sends without TLS (no STARTTLS, not SMTP_SSL): the password and every "
        "message (results, letters, attachments) cross the network in cleartext. Call `starttls()` before "
        "`login()` or use `smtplib.SMTP_SSL`."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python"}),
    keywords=("smtp",),
    check=_smtp_plain_login,
    examples=(
        udiff("notify/mail.py", "+def send(msg, user, password):", "+    with smtplib.SMTP(\"smtp.harbor-health.org\", 25) as s:",
              "+        s.login(user, password)", "+        s.send_message(msg)"),
    ),
    counterexamples=(
        udiff("notify/mail.py", "+def send(msg, user, password):", "+    with smtplib.SMTP(\"smtp.harbor-health.org\", 587) as s:",
              "+        s.starttls()", "+        s.login(user, password)", "+        s.send_message(msg)"),
        udiff("notify/mail.py", "+def send(msg, user, password):", "+    with smtplib.SMTP(\"localhost\", 1025) as s:",
              "+        s.login(user, password)", "+        s.send_message(msg)"),
        udiff("notify/mail.py", "+def send(msg, user, password):", "+    with smtplib.SMTP_SSL(\"smtp.harbor-health.org\", 465) as s:",
              "+        s.login(user, password)", "+        s.send_message(msg)"),
    ),
)

_MLLP_PLAIN = Rule(
    id="TLS-015",
    category="insecure-transport",
    severity="high",
    message=(
        "HL7 v2 messages (orders, results, ADT: names, MRNs, dates of birth, diagnoses) are sent over plain MLLP/TCP "
        "with no TLS. Use MLLP over TLS (HAPI `newClient(host, port, true)`, a TLS socket) or a VPN/stunnel tunnel."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python", "java", "kotlin", "csharp", "javascript", "typescript"}),
    keywords=("mllpclient", "newclient"),
    pattern=r"\bMLLPClient\s*\(|\bnewClient\s*\(\s*[^,()\n]+,\s*[^,()\n]+,\s*false\s*\)",
    unless=(_COMMENT, _IMPORT, r"(?i)localhost|127\.0\.0\.1|ssl_?context|tls"),
    examples=(
        "interfaces/lab_orders.py::    with MLLPClient(LAB_HOST, LAB_PORT) as client:",
        "adt/src/main/java/org/x/AdtSender.java::        Connection conn = context.newClient(host, port, false);",
    ),
    counterexamples=(
        "adt/src/main/java/org/x/AdtSender.java::        Connection conn = context.newClient(host, port, true);",
        "tests/fake_lab.py::    with MLLPClient(\"localhost\", 2575) as client:",
        "interfaces/lab_orders.py::from hl7.client import MLLPClient",
    ),
)

# MLLP framing written by hand over a plain socket: <VT> message <FS><CR>
_MLLP_FRAMING_RE = re2.compile(r"""(?i)\\x0b|\\u000b|\\013|0x0b\b|\bchr\(\s*11\s*\)|\bSTART_?BLOCK\b|\bMLLP\b""")
_PLAIN_SOCKET_RE = re2.compile(
    r"\bnet\.(?:createConnection|connect)\s*\(|\bnew\s+net\.Socket\s*\(|\bsocket\.create_connection\s*\(|"
    r"\bnew\s+(?:Socket|TcpClient)\s*\(|\bnet\.Dial(?:Timeout)?\s*\(\s*\"tcp"
)
_TLS_SOCKET_RE = re2.compile(r"(?i)\btls\.connect\b|\bwrap_socket\b|\bSslStream\b|SSLSocketFactory|\btls\.Dial|\bssl_context\b|\bstunnel\b")


def _mllp_plain_socket(ctx: FileContext) -> Iterator[Hit]:
    """A file that frames HL7 as MLLP itself and opens a plain TCP socket to a non-local host (no TLS wrap in view)."""
    if ctx.is_test or _local_only(ctx):
        return
    visible = [ln for h in ctx.file.hunks for ln in h.lines if ln.kind != "-"]
    if not any(_MLLP_FRAMING_RE.search(ln.text) for ln in visible) or any(_TLS_SOCKET_RE.search(ln.text) for ln in visible):
        return
    for ln in ctx.scan(r"createconnection|net\.connect|net\.socket|create_connection|new socket|tcpclient|net\.dial"):
        if ln.new_no is not None and not is_comment(ln.text) and _PLAIN_SOCKET_RE.search(ln.text) \
                and not re2.search(r"(?i)localhost|127\.0\.0\.1", ln.text):
            yield Hit(ln.new_no)


_MLLP_SOCKET = Rule(
    id="TLS-017",
    category="insecure-transport",
    severity="high",
    message=_MLLP_PLAIN.message,
    regulations=REGULATIONS,
    languages=frozenset({"python", "java", "kotlin", "csharp", "javascript", "typescript", "go"}),
    keywords=("\\x0b", "\\u000b", "0x0b", "mllp", "start_block", "startblock", "chr(11)"),
    check=_mllp_plain_socket,
    examples=(
        udiff("interfaces/labOrders.js", '+const LAB_HOST = "hl7.regional-reference-lab.com";',
              "+    const socket = net.createConnection({ host: LAB_HOST, port: 6661 }, () => {",
              '+      socket.write("\\x0b" + hl7Message + "\\x1c\\r");', "+    });"),
    ),
    counterexamples=(
        udiff("interfaces/labOrders.js", '+const LAB_HOST = "hl7.regional-reference-lab.com";',
              "+    const socket = tls.connect({ host: LAB_HOST, port: 6661, ca }, () => {",
              '+      socket.write("\\x0b" + hl7Message + "\\x1c\\r");', "+    });"),
        udiff("tests/fake_lab.js", "+    const socket = net.createConnection({ host: \"localhost\", port: 6661 }, () => {",
              '+      socket.write("\\x0b" + hl7Message + "\\x1c\\r");', "+    });"),
    ),
)


_PG_HBA_RE = re2.compile(r"^\s*(host|hostnossl)\s+\S+\s+\S+\s+(\S+)")
_PG_HBA_LOCAL_RE = re2.compile(r"^(?:127\.|::1|localhost|samehost|samenet)")


def _pg_hba_cleartext(ctx: FileContext) -> Iterator[Hit]:
    """A `host`/`hostnossl` record in pg_hba.conf for a remote address: that client may connect without TLS
    (`hostssl` is the record that requires it)."""
    if ctx.is_test or "pg_hba" not in ctx.path.lower():
        return
    for ln in ctx.scan(r"(?m:^\s*host)"):
        m = _PG_HBA_RE.search(ln.text)
        if m is None or ln.new_no is None or _PG_HBA_LOCAL_RE.search(m.group(2)):
            continue
        if "reject" in ln.text.split()[-1:]:
            continue
        yield Hit(ln.new_no, f"This pg_hba.conf `{m.group(1)}` record lets clients from {m.group(2)} connect without "
                  "TLS, so logins and query results (PHI) can cross the network in cleartext. Use `hostssl`.")


_PG_HBA_CLEARTEXT = Rule(
    id="TLS-016",
    category="insecure-transport",
    severity="high",
    message="A pg_hba.conf record accepts non-TLS connections from the network. Use `hostssl`.",
    regulations=REGULATIONS,
    keywords=("pg_hba",),
    check=_pg_hba_cleartext,
    examples=(
        udiff("deploy/postgres/pg_hba.conf", " hostssl ehr       ehr_app     10.20.0.0/16   scram-sha-256",
              "-hostssl ehr       reporting   10.30.0.0/16   scram-sha-256", "+host    ehr       reporting   10.30.0.0/16   scram-sha-256"),
        udiff("pg/pg_hba.conf", "+hostnossl all all 0.0.0.0/0 md5"),
    ),
    counterexamples=(
        udiff("deploy/postgres/pg_hba.conf", "+hostssl ehr       reporting   10.30.0.0/16   scram-sha-256"),
        udiff("deploy/postgres/pg_hba.conf", "+host    all       all         127.0.0.1/32   scram-sha-256"),
        udiff("deploy/postgres/pg_hba.conf", "+host    all       all         0.0.0.0/0      reject"),
    ),
)

RULES: tuple[Rule, ...] = (
    _VERIFY_OFF, _LEGACY_PROTOCOL, _TLS_OFF, _CLEARTEXT_URL, _NESTED_TLS_OFF, _SETTING_TLS_OFF, _TLS_CALL_DROPPED,
    _HTTP_LISTENER, _MESH_TLS_OFF, _PLAINTEXT_CLIENT, _SCHEME_DOWNGRADE, _HOST_KEY_UNCHECKED, _TRUST_ALL_METHOD,
    _SMTP_PLAIN_LOGIN, _MLLP_PLAIN, _PG_HBA_CLEARTEXT, _MLLP_SOCKET,
)
