"""Insecure transport: verification off, legacy protocols, TLS switched off, cleartext endpoints."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.review.engine import review
from assistant.review import transport
from assistant.review._structure import udiff


def findings(diff: str, category: str = "insecure-transport"):
    return [f for f in review(parse_diff(diff), rules=transport.RULES).findings if f.category == category]


def test_verify_false_is_reported_on_its_own_line_with_rule_and_regulations():
    diff = udiff(
        "hie/client.py",
        "         resp = self.session.post(",
        "             url,",
        "             json=document,",
        "+            verify=False,",
        "         )",
        start=17,
    )
    [f] = findings(diff)
    assert (f.file, f.line, f.rule) == ("hie/client.py", 20, "TLS-001")
    assert "HIPAA 164.312(e)(1)" in f.regulations
    assert "CA bundle" in f.message


def test_verification_kept_on_or_pointed_at_a_ca_bundle_is_not_reported():
    diff = udiff(
        "hie/client.py",
        "+INTERNAL_CA = '/etc/pki/tls/certs/internal-ca.pem'",
        "+        self.session.verify = INTERNAL_CA",
        "+            verify=True,",
        "+    ctx.minimum_version = ssl.TLSVersion.TLSv1_2",
    )
    assert findings(diff) == []


def test_each_language_spelling_of_no_verification_is_reported():
    cases = {
        "cmd/proxy/main.go": "\t\tTLSClientConfig: &tls.Config{InsecureSkipVerify: true},",
        "server/lab.js": "const agent = new https.Agent({ rejectUnauthorized: false });",
        "src/Gateway.cs": "handler.ServerCertificateCustomValidationCallback = (m, c, ch, e) => true;",
        "src/main/java/Http.java": "    .setSSLHostnameVerifier(NoopHostnameVerifier.INSTANCE)",
        "deploy/values.yaml": "  insecure_skip_verify: true",
    }
    for path, line in cases.items():
        assert [f.rule for f in findings(udiff(path, "+" + line))] == ["TLS-001"], path


def test_a_commented_warning_is_not_a_finding():
    assert findings(udiff("hie/client.py", "+    # never pass verify=False to the exchange")) == []


def test_legacy_tls_is_reported_but_tls12_minimum_is_not():
    bad = udiff("reg/Client.java", '+        SSLContext legacy = SSLContext.getInstance("TLSv1");')
    good = udiff("reg/Client.java", '+        SSLContext ctx = SSLContext.getInstance("TLSv1.2");')
    assert [f.rule for f in findings(bad)] == ["TLS-002"]
    assert findings(good) == []
    assert [f.rule for f in findings(udiff("infra/sql.tf", '+  minimum_tls_version = "1.0"'))] == ["TLS-002"]
    assert findings(udiff("infra/sql.tf", '+  minimum_tls_version = "1.2"')) == []


def test_cleartext_endpoint_is_reported_but_fhir_canonical_uris_and_loopback_are_not():
    assert [f.line for f in findings(udiff("config/interfaces.yaml", "   fhir:", "-    base_url: https://fhir.hie.org/r4",
                                           "+    base_url: http://fhir.hie.org/r4"))] == [2]
    quiet = udiff(
        "fhir/mapper.py",
        '+    {"system": "http://hl7.org/fhir/sid/us-ssn", "value": token},',
        '+API = "http://localhost:8080/api"',
        "+        - curl -f http://10.0.0.5:8080/healthz",
    )
    assert findings(quiet) == []


def test_tls_switched_off_in_a_connection_string_and_in_nested_yaml():
    assert findings(udiff("app/db.py", '+DSN = "postgresql://ehr@db/ehr?sslmode=disable"'))
    nested = udiff("config/hl7.yaml", " interfaces:", "   lab:", "     tls:", "-      enabled: true", "+      enabled: false")
    [f] = findings(nested)
    assert (f.rule, f.line) == ("TLS-005", 4)
    assert "interfaces.lab.tls" in f.message
    unrelated = udiff("config/app.yaml", " features:", "   banner:", "-    enabled: true", "+    enabled: false")
    assert findings(unrelated) == []


def test_a_megabyte_line_is_read_to_its_end():
    """RE2 patterns are linear; a 1 MB minified line still yields the finding at its end (timing lives in bench/)."""
    line = "+x = [" + "'ab', " * 180_000 + "requests.get(u, verify=False)]"
    [f] = findings(udiff("static/bundle.py", line))
    assert f.rule == "TLS-001"


def test_https_only_switched_off_but_negated_keys_set_false_are_fine():
    assert findings(udiff("infra/azure/storage.tf", "+  enable_https_traffic_only = false"))
    assert findings(udiff("config/client.yaml", "+  tls_skip_verify: false")) == []
    assert findings(udiff("config/client.yaml", "+  ssl_disabled: false")) == []
