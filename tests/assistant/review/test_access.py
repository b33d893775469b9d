"""Access control: removed guards, anonymous access, unauthenticated routes, backdoors, IDOR, wildcard grants."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.review import access
from assistant.review._structure import udiff
from assistant.review.engine import review


def findings(diff: str):
    return [f for f in review(parse_diff(diff), rules=access.RULES).findings if f.category == "access-control"]


def test_removed_login_decorator_is_anchored_on_the_line_replacing_it():
    diff = udiff(
        "portal/labs/routes.py",
        ' @bp.get("/patients/<int:patient_id>/labs")',
        "-@login_required",
        "+@cross_origin(origins=KIOSK_ORIGINS)",
        " def lab_results(patient_id: int):",
        start=12,
    )
    assert [(f.line, f.rule) for f in findings(diff)] == [(13, "ACC-001")]


def test_a_guard_replaced_by_another_guard_is_not_reported():
    diff = udiff("portal/labs.py", ' @bp.get("/labs")', "-@login_required", '+@roles_required("clinician")', " def labs():")
    assert findings(diff) == []


def test_allow_anonymous_on_a_patient_controller_but_not_on_health():
    patient = udiff("Api/Imm.cs", ' [Route("api/patients/{id}/immunizations")]', "-[Authorize]", "+[AllowAnonymous]",
                    " public class ImmController {}")
    health = udiff("Api/Health.cs", ' [Route("/healthz")]', "+[AllowAnonymous]", " public class HealthController {}")
    assert [f.line for f in findings(patient)] == [2]
    assert findings(health) == []


def test_new_flask_route_without_authentication_is_reported_on_its_declaration():
    diff = udiff(
        "research/cohorts/routes.py",
        ' bp = Blueprint("cohorts", __name__)',
        "+",
        '+@bp.post("/cohorts/<int:cohort_id>/export")',
        "+def export(cohort_id: int):",
        "+    return jsonify(load(cohort_id))",
    )
    assert [f.line for f in findings(diff)] == [3]


def test_new_routes_with_login_public_paths_or_an_app_without_per_route_auth_are_not_reported():
    authed = udiff("p/routes.py", ' bp = Blueprint("p", __name__)', '+@bp.get("/patients/<int:pid>/problems")',
                   "+@login_required", "+def problems(pid):", "+    return load(pid)")
    health = udiff("p/health.py", " router = APIRouter()", '+@router.get("/healthz")', "+def healthz():",
                   '+    return {"ok": True}')
    global_auth = udiff("p/app.py", " bp.before_request(require_login)", '+@bp.get("/patients/<int:pid>")',
                        "+def patient(pid):", "+    return load(pid)")
    fastapi = udiff("p/api.py", ' @router.get("/claims/{cid}")',
                    "+def claim(cid: int, member=Depends(current_member)):", "+    return load(cid)")
    for diff in (authed, health, global_auth, fastapi):
        assert findings(diff) == [], diff


def test_express_route_needs_middleware_unless_the_router_uses_it():
    bare = udiff("api/routes/notes.js", " const router = express.Router();",
                 '+router.get("/patients/:id/notes/export", async (req, res) => res.send(await exportAll(req.params.id)));')
    wrapped = udiff("api/routes/notes.js", " const router = express.Router();",
                    '+router.get("/patients/:id/notes", authenticate, async (req, res) => res.json(await list(req)));')
    router_wide = udiff("api/routes/notes.js", " router.use(requireAuth);",
                        '+router.get("/patients/:id/notes", async (req, res) => res.json(await list(req)));')
    assert [f.line for f in findings(bare)] == [2]
    assert findings(wrapped) == [] and findings(router_wide) == []


def test_go_route_missing_the_wrapper_its_siblings_have():
    diff = udiff(
        "cmd/portal/routes.go",
        ' \tmux.Handle("GET /api/patients/{id}", s.requireUser(http.HandlerFunc(s.patient)))',
        '+\tmux.HandleFunc("GET /api/patients/{id}/labs", s.labs)',
        ' \tmux.HandleFunc("GET /healthz", s.healthz)',
    )
    assert [f.line for f in findings(diff)] == [2]


def test_support_override_header_is_a_backdoor_but_content_negotiation_is_not():
    backdoor = udiff("server/middleware/auth.js", " function requireAuth(req, res, next) {",
                     '+  if (req.headers["x-support-override"] === "letmein") {', "+    return next();", "+  }")
    [f] = findings(backdoor)
    assert (f.line, f.rule, f.severity) == (2, "ACC-004", "critical")
    benign = udiff("server/api.js", " function parse(req, res, next) {",
                   '+  if (req.headers["content-type"] === "application/json") return next();')
    assert findings(benign) == []


def test_fetch_by_id_without_owner_scope_is_reported_on_the_fetch():
    diff = udiff(
        "portal/documents/views.py",
        " @login_required",
        " def download(request, document_id: int):",
        "-    doc = ClinicalDocument.objects.get(pk=document_id, patient__user=request.user)",
        "+    doc = ClinicalDocument.objects.filter(pk=document_id).first()",
        "     return FileResponse(doc.file.open())",
        start=9,
    )
    assert [(f.line, f.rule) for f in findings(diff)] == [(11, "ACC-005")]


def test_a_fetch_by_id_counts_as_a_handler_s_by_the_file_or_its_own_directory_name():
    def fetch(path: str) -> str:
        return udiff(path, " public async Task<EncounterDto> LoadAsync(int encounterId)", " {",
                     "+    var entity = await _context.Encounters.FindAsync(encounterId);", " }")

    assert [f.rule for f in findings(fetch("Clinic.Api/Controllers/EncountersController.cs"))] == ["ACC-005"]
    assert [f.rule for f in findings(fetch("src/api/encounters.cs"))] == ["ACC-005"]
    # a service or repository in a project named *.Api is not a request handler, nor is reviews.cs a view
    assert findings(fetch("Clinic.Api/Records/EncounterService.cs")) == []
    assert findings(fetch("src/Records/reviews.cs")) == []


def test_fetch_scoped_to_the_caller_or_checked_after_is_not_reported():
    scoped = udiff("portal/views.py", " def download(request, document_id):",
                   "+    doc = get_object_or_404(ClinicalDocument, pk=document_id, patient__user=request.user)")
    checked = udiff("portal/views.py", " def download(request, document_id):",
                    "+    doc = ClinicalDocument.objects.get(pk=document_id)",
                    "+    if not can_view_patient(request.user, doc.patient_id):", "+        raise PermissionDenied")
    assert findings(scoped) == [] and findings(checked) == []


def test_wildcard_grants_in_rbac_iam_and_sql():
    rbac = udiff("k8s/rbac.yaml", " rules:", '-  - apiGroups: [""]', '+  - apiGroups: ["*"]', '+    resources: ["*"]',
                 '+    verbs: ["*"]')
    assert [f.rule for f in findings(rbac)] == ["ACC-006"]  # one problem, merged
    block = udiff("k8s/rbac.yaml", " rules:", "   - apiGroups: [\"\"]", "     verbs:", '+      - "*"')
    assert findings(block)
    assert findings(udiff("k8s/binding.yaml", " roleRef:", "   kind: ClusterRole", "-  name: reader", "+  name: cluster-admin"))
    assert findings(udiff("db/V9.sql", "+GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO reporting;"))
    assert findings(udiff("db/V9.sql", "+GRANT SELECT ON encounters TO reporting;")) == []
    assert findings(udiff("db/V9.sql", "+GRANT SELECT, INSERT, UPDATE, DELETE ON audit_log TO ehr_app;")) == []


def test_go_handler_fetching_by_path_id_without_owner_is_reported():
    diff = udiff(
        "internal/docs/handler.go",
        " func (h *Handler) Get(w http.ResponseWriter, r *http.Request) {",
        '+\tdoc, err := h.store.GetByID(r.Context(), r.PathValue("docID"))',
        "+\twriteJSON(w, doc)",
    )
    scoped = udiff(
        "internal/docs/handler.go",
        " func (h *Handler) Get(w http.ResponseWriter, r *http.Request) {",
        '+\tdoc, err := h.store.GetForUser(r.Context(), auth.User(r.Context()), r.PathValue("docID"))',
    )
    assert [f.line for f in findings(diff)] == [2]
    assert findings(scoped) == []


def test_token_verification_switched_off_and_public_principals():
    assert findings(udiff("api/auth.py", ' def user_from(token):',
                          '+    claims = jwt.decode(token, options={"verify_signature": False})'))
    assert findings(udiff("infra/bucket-policy.json", '+      "Principal": "*",'))
    assert findings(udiff("infra/gcs.tf", '+  member = "allUsers"'))
    assert findings(udiff("api/auth.py", ' def user_from(token):',
                          '+    claims = jwt.decode(token, key, algorithms=["RS256"])')) == []


def test_router_wide_dependency_removed_is_reported_on_the_new_router_line():
    diff = udiff(
        "api/routers/encounters.py",
        " from ..auth import require_clinician",
        " ",
        '-router = APIRouter(prefix="/encounters", dependencies=[Depends(require_clinician)])',
        '+router = APIRouter(prefix="/encounters")',
    )
    assert [(f.line, f.rule) for f in findings(diff)] == [(3, "ACC-001")]


def test_fetch_by_id_behind_a_role_requirement_is_not_an_idor():
    diff = udiff("admin/routes.py", ' @bp.post("/admin/appointments/<int:appointment_id>/cancel")',
                 ' @roles_required("scheduler")', " def cancel(appointment_id):",
                 "+    appt = Appointment.query.get_or_404(appointment_id)", "+    appt.cancel()")
    assert findings(diff) == []


def test_auth_middleware_swapped_for_another_wrapper():
    diff = udiff("cmd/api/main.go", " \tmux := routes()", "-\thandler := auth.Require(mux)", "+\thandler := withRequestID(mux)")
    assert [f.line for f in findings(diff)] == [2]


def test_a_route_beside_a_group_guarded_by_a_bare_auth_middleware_is_reported():
    diff = udiff(
        "internal/httpapi/routes.go",
        ' \tapi := r.Group("/api/v1", auth)',
        ' \tapi.GET("/patients/:id", h.patient)',
        '+\tr.GET("/api/v1/patients/:id/imaging", h.imaging)',
        start=10,
    )
    guarded = udiff(
        "internal/httpapi/routes.go",
        ' \tapi := r.Group("/api/v1", auth)',
        ' \tapi.GET("/patients/:id", h.patient)',
        '+\tapi.GET("/api/v1/patients/:id/imaging", h.imaging)',
        start=10,
    )
    assert [(f.line, f.rule) for f in findings(diff)] == [(12, "ACC-003")]
    assert findings(guarded) == []


def test_a_debug_header_taken_as_the_user_is_a_backdoor_but_a_request_id_is_not():
    debug = udiff(
        "internal/httpapi/dev.go",
        " func DevIdentity(c *gin.Context) {",
        '+\tif u := c.GetHeader("X-Debug-User"); u != "" {',
        '+\t\tc.Set("user", u)',
        "+\t}",
    )
    request_id = udiff(
        "internal/httpapi/ids.go",
        " func RequestID(c *gin.Context) {",
        '+\tif rid := c.GetHeader("X-Request-ID"); rid != "" {',
        '+\t\tc.Set("request_id", rid)',
        "+\t}",
    )
    assert [(f.line, f.rule) for f in findings(debug)] == [(2, "ACC-004")]
    assert findings(request_id) == []


def test_allow_anonymous_on_health_actions_and_imports_of_the_marker_are_not_reported():
    ready = udiff("Controllers/HealthController.cs", ' [Route("health")]', " public class HealthController {",
                  '+    [HttpGet("ready")]', "+    [AllowAnonymous]", "+    public IActionResult Ready() => Ok();")
    record = udiff("Controllers/ChartController.cs", ' [Route("charts")]', " public class ChartController {",
                   '+    [HttpGet("{id}")]', "+    [AllowAnonymous]", "+    public IActionResult Get(int id) => Ok();")
    imported = udiff("referrals/api/views.py", "-from rest_framework.permissions import IsAuthenticated",
                     "+from rest_framework.permissions import AllowAny")
    assert findings(ready) == []
    assert [f.line for f in findings(record)] == [4]
    assert findings(imported) == []


def test_go_parse_unverified_and_unauthenticated_role_bindings():
    jwt = udiff("internal/auth/identity.go", " func Subject(raw string) (string, error) {",
                "+\tif _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {")
    binding = udiff("deploy/rbac.yaml", " subjects:", "+  - kind: Group", "+    name: system:unauthenticated")
    assert [(f.line, f.rule) for f in findings(jwt)] == [(2, "ACC-004")]
    assert [(f.line, f.rule) for f in findings(binding)] == [(3, "ACC-006")]


def test_wildcards_in_a_deny_statement_are_not_a_grant():
    deny = udiff("infra/s3.tf", ' data "aws_iam_policy_document" "tls" {', "+  statement {", '+    effect  = "Deny"',
                 '+    actions = ["s3:*"]', "+  }")
    allow = udiff("infra/s3.tf", ' data "aws_iam_policy_document" "rw" {', "+  statement {", '+    effect  = "Allow"',
                  '+    actions = ["s3:*"]', "+  }")
    assert findings(deny) == []
    assert [f.line for f in findings(allow)] == [4]
