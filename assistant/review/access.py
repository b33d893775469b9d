"""Access control: who may reach patient data, and whether the code still asks.

Authentication and authorization mostly fail by omission -- a decorator
deleted, a route added without one, a record fetched by id without checking
whose it is -- so most rules here are structural: they read the decorator
stack and signature around a route, the change block a guard was removed
from, and the lines around a fetch-by-id for an ownership check. Backdoors
and wildcard grants are visible on their own lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from assistant.diffs import DiffLine, Hunk
from assistant.review import re2fast as re2
from assistant.review._structure import (
    udiff,
    words_of,
    DOC_LANGUAGES,
    added_normalized,
    anchor_for_removal,
    any_hint,
    blocks,
    enclosing_keys,
    indent_of,
    index_in,
    is_comment,
    normalized,
    post_lines,
    statement_text,
)
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext

REGULATIONS = ("HIPAA 164.312(a)(1)", "HIPAA 164.312(d)")

# Authentication: the request must carry a verified identity.
AUTHN = (
    r"login_?required|jwt_?required|requires?_?(?:auth\w*|login|token|jwt|bearer|api_?key|logged_?in|role\w*|permission\w*|scope\w*|user|"
    r"authenticated|claims?)|permission_?required|roles?_?(?:required|accepted|allowed)|pre_?authorize|"
    r"post_?authorize|@secured|rolesallowed|requirespermissions|requiresroles|\[\s*authorize|isauthenticated|"
    r"is_authenticated|ensure_?(?:authenticated|logged_?in|auth\w*)|passport\.authenticate|"
    r"verify_?(?:token|jwt|session|auth\w*|user)|check_?(?:jwt|auth\w*|token|session)|auth_?middleware|"
    r"authenticate|requireauthorization|\.authenticated\(\)|has_?(?:role|authority|any_?role|any_?authority|"
    r"permission|perm|perms)\b|permission_classes|loginrequiredmixin|permissionrequiredmixin|userpassestestmixin|"
    r"depends\(\s*(?:get_)?current_?\w*|depends\(\s*\w*(?:auth|user|token|verify|principal)\w*|"
    r"depends\(\s*(?:require|ensure|check|verify|validate|has|must)_?\w+|dependencies\s*=\s*\[\s*depends\(|"
    r"security\(\s*\w+|useguards|authguard|jwtguard|@auth\b|\bprotect(?:ed)?\b|require_?user|with_?user|"
    r"authn|oauth2_?scheme|bearer|get_?jwt_?identity|current_?user\s*:|principal\b|@authorize|"
    r"\bauth\.(?:require|middleware|protect|handler|wrap|ensure|must|check|verify|guard|authenticate|session)\w*|"
    r"with_?auth\w*\(|require_?session|echojwt\.|\bmiddleware\.(?:JWT|KeyAuth|BasicAuth)\w*|jwtauth\.(?:Verifier|Authenticator)"
)
# Authorization: the caller may see this particular record.
AUTHZ = (
    r"can_?(?:view|access|read|see|edit|open|get)\w*|has_?access|check_?(?:access|perm\w*|owner\w*)|authoriz\w*\(|"
    r"abort\(\s*403|\b403\b|forbidden|permission_?denied|access_?denied|forbid\(|is_?member|belongs_?to|"
    r"ensure_?\w*(?:owner|access|member)\w*|assert_?\w*(?:owner|access|can)\w*|\.owner\b|owner_?id|"
    r"may_?(?:view|access|read)|user_?can|is_?owner|is_?authorized|verify_?access|require_?access|"
    r"get_?object_?for_?user|for_?user\(|care_?team|enforce\(|policy\.|authorize!|access_?check|"
    r"roles?_?required|require_?roles?|has_?role|hasrole|hasanyrole|preauthorize|is_staff|is_admin|admin_required|"
    r"staff_member_required|superuser_required|\[authorize\(\s*roles|access_required|permission_required|"
    r"check_?object_?permissions|has_?object_?permission|get_object_or_403|is_?owner|isowner|owned_?by|"
    r"authorizationservice|iauthorizationservice|authorizeasync"
)
AUTH_RE = re2.compile(r"(?i)(?:" + AUTHN + r"|" + AUTHZ + r")")
AUTHN_RE = re2.compile(r"(?i)(?:" + AUTHN + r")")
AUTHZ_RE = re2.compile(r"(?i)(?:" + AUTHZ + r")")
_ANON_RE = re2.compile(r"(?i)allow_?anonymous|permit_?all|allowany|no_?auth|skip_?auth|public|login_exempt")

_PUBLIC_PATH_RE = re2.compile(
    r"(?i)(?:^|/)(?:healthz?|health-check|healthcheck|readyz?|livez?|liveness|readiness|metrics|ping|status|version|"
    r"login|logout|signin|sign-in|signup|sign-up|register|forgot[-_]?password|reset[-_]?password|static|public|"
    r"assets|favicon\.ico|robots\.txt|docs|openapi(?:\.json)?|swagger\S*|redoc|\.well-known|callback|oauth2?|auth|"
    r"token|sso|saml|webhooks?|csrf|actuator/(?:health|info)|heartbeat|alive|(?:v\d+/)?api-docs|swagger-ui)(?:$|[/.?\"'{<*])"
)
# An import/using line: neither code a guard sits on nor a route. (A first definition that also matched
# `const x = require(` was shadowed by this one further down and never took effect; it is gone, verdicts unchanged.)
_IMPORT_RE = re2.compile(r"^\s*(?:import\s|from\s+[\w.]+\s+import\s|using\s+(?:static\s+)?[\w.]+\s*;)")


def _code(ln: DiffLine) -> bool:
    return bool(ln.text.strip()) and not is_comment(ln.text) and _IMPORT_RE.search(ln.text) is None


# ---------------------------------------------------------------- ACC-001 removed guard


_ROUTER_LEVEL_RE = re2.compile(r"(?i)before_(?:app_)?request|\.use\(|dependencies\s*=|requireauthorization|useguards|"
                               r"authorizationpolicy|fallbackpolicy|\[authorize")


def _removed_guard(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    moved: set[str] | None = None
    router_level: bool | None = None
    for block in blocks(ctx):
        flipped = _allow_to_deny(block)
        if flipped is not None:
            yield Hit(flipped, "The role check turns from an allow-list (reject whoever is not in it) into a deny-list "
                               "(reject only the roles named), so every other role -- billing, vendors, patients, any "
                               "role added later -- now passes. Keep the allow-list.")
            continue
        gone = [ln for ln in block.removed if _code(ln) and AUTH_RE.search(ln.text)]
        if not gone:
            continue
        if any(_code(ln) and AUTH_RE.search(ln.text) and not _NON_AUTH_GUARD_RE.search(ln.text) for ln in block.added) and (
                not _global_guard_dropped(ctx, gone)):
            narrowed = _authz_dropped_from_line(block)
            if narrowed is None:
                opened = _weakened(block, gone)
                if opened is not None:
                    yield Hit(opened[0], "The guard is replaced by a weaker one: " + (
                        "it now lets every caller in, signed in or not." if opened[1] == 0 else
                        "it now only asks that the caller is signed in, not that they hold the role or may see "
                        "this patient.") + " Restore the role/permission/ownership check.")
                continue
            if narrowed is not None:
                yield Hit(narrowed, "The authorization check (role/permission) is removed from this line while the "
                                    "authentication stays, so any signed-in user now passes. Restore the role or "
                                    "permission check.")
            continue
        if moved is None:
            moved = added_normalized(ctx)
            router_level = any(_ROUTER_LEVEL_RE.search(ln.text) and AUTH_RE.search(ln.text)
                               and not _NON_AUTH_GUARD_RE.search(ln.text) and _code(ln) for ln in ctx.added)
        if router_level or all(normalized(ln.text) in moved for ln in gone):
            continue  # (a moved middleware registration is judged by `_middleware_reordered`)
        aliases = ctx.memo("acc-guard-aliases", lambda: _guard_aliases(ctx))
        if aliases and any(not aliases.isdisjoint(_WORD_TOKENS_RE.findall(ln.text)) for ln in block.added):
            continue  # the guards now travel under a name: `router.get(p, ...clinicianOnly, h)`
        anchor = anchor_for_removal(block)
        if anchor is not None:
            yield Hit(
                anchor,
                f"The guard `{gone[0].text.strip()[:80]}` is removed and nothing replaces it, so this code path "
                "no longer checks who the caller is or whether they may see the record. Restore the "
                "authentication/authorization check (or an equivalent one) before PHI is returned.",
            )
    if ctx.language in ("javascript", "typescript"):
        yield from _middleware_reordered(ctx)


# The app-wide default that makes every endpoint require a signed-in user: ASP.NET Core's fallback policy,
# `RequireAuthorization()` on the endpoint group, Spring's `anyRequest().authenticated()`, DRF's default
# permission classes. Replacing it with a bare `AddAuthorization()` still "mentions auth" but requires nothing.
_GLOBAL_GUARD_RE = re2.compile(
    r"(?i)FallbackPolicy|RequireAuthenticatedUser\s*\(|\.RequireAuthorization\s*\(|"
    r"anyRequest\s*\(\s*\)\s*\.\s*(?:authenticated|hasRole|hasAuthority)|DEFAULT_PERMISSION_CLASSES|(?-i:IsAuthenticated)(?:$|[^\w(])"
)


# Guards that protect something other than identity: `@UseGuards(ThrottlerGuard)` mentions guards, not auth.
_NON_AUTH_GUARD_RE = re2.compile(
    r"(?i)(?:UseGuards|UseFilters|UseInterceptors)\(\s*(?:\w*(?:Throttl|RateLimit|Cache|Logging|Timeout|Metric|Csrf|Idempot)\w*"
    r"(?:\(\))?\s*,?\s*)+\)"
)


_WORD_TOKENS_RE = re2.compile(r"[A-Za-z_]\w*")


def _authz_dropped_from_line(block: object) -> int | None:
    """One line changed by deleting an authorization call from it and nothing else:
    `app.use("/api/admin", requireAuth, requireRole("admin"), adminRouter)` -> `app.use("/api/admin", requireAuth, adminRouter)`."""
    removed, added = block.removed, block.added  # type: ignore[attr-defined]
    if len(removed) != 1 or len(added) != 1 or added[0].new_no is None:
        return None
    old, new = removed[0].text, added[0].text
    if AUTHZ_RE.search(old) is None or AUTHZ_RE.search(new) is not None:
        return None
    old_tokens = set(_WORD_TOKENS_RE.findall(old))
    if not set(_WORD_TOKENS_RE.findall(new)) <= old_tokens:
        return None  # something else was written: a different check, not a deletion
    return added[0].new_no


_ROLE_TEST_RE = re2.compile(
    r"(?i)^\s*(?:if|elif|unless|else\s+if)\b.*\b\w*(?:role|roles|permission|permissions|perms|scopes?|groups?|authorit\w*|privileges?)\b"
)
_NEGATED_RE = re2.compile(r"(?i)\bnot\s+in\b|!==?|\bnot\s+[\w.]+\.\w+\(|![\w.]+\.\w+\(|!\s*\(|\bunless\b|\bnot\s*\(")


def _allow_to_deny(block: object) -> int | None:
    """`if role not in CLINICAL_ROLES: abort(403)` -> `if role in BLOCKED_ROLES: abort(403)`: one role test replaced
    by another that lost its negation, so the check now names who is refused instead of who is let in."""
    removed, added = block.removed, block.added  # type: ignore[attr-defined]
    if not removed or not added or len(removed) > 3:
        return None
    was = [ln for ln in removed if _ROLE_TEST_RE.search(ln.text) and _NEGATED_RE.search(ln.text)]
    if not was:
        return None
    for ln in added:
        if ln.new_no is not None and _ROLE_TEST_RE.search(ln.text) and not _NEGATED_RE.search(ln.text) \
                and not is_comment(ln.text):
            return ln.new_no
    return None


_ALIAS_RE = re2.compile(
    r"^\s*(?:export\s+)?(?:(?:const|let|var|val|final|private|static|readonly)\s+)*([A-Za-z_]\w*)\s*(?::[^=]*)?:?=\s*(.+)$"
)


def _guard_aliases(ctx: FileContext) -> frozenset[str]:
    """Names the post-image binds to authentication/authorization middleware or decorators:
    `const clinicianOnly = [requireAuth, requireRole("clinician")]`, `clinician_only = roles_required("clinician")`."""
    out: set[str] = set()
    for number in ctx.lines_matching(_ALIAS_RE.pattern):
        where = ctx.position(number)
        if where is None:
            continue
        post, i = where
        m = _ALIAS_RE.search(post[i].text)
        if m is not None and AUTH_RE.search(m.group(2)) and not _NON_AUTH_GUARD_RE.search(m.group(2)):
            out.add(m.group(1))
    return frozenset(out)


# A guard that lets everyone through: Spring's `@PreAuthorize("permitAll()")`, `.permitAll()`, `[AllowAnonymous]`.
_OPEN_GUARD_RE = re2.compile(
    r"(?i)permitAll|isAnonymous\(\)|PreAuthorize\(\s*\"true\"|AllowAnonymous|IS_AUTHENTICATED_ANONYMOUSLY|\bAllowAny\b|"
    r"optional\s*=\s*True|anonymous[\"']|RequireAssertion\(\s*\(?\s*\w*\s*\)?\s*=>\s*true\s*\)|credentialsRequired\s*:\s*false"
)
# The annotation/attribute names that wrap a guard expression: what decides is inside them.
_GUARD_WRAPPER_RE = re2.compile(r"(?i)@?(?:Pre|Post)Authorize\s*\(|\[\s*Authorize\b|@Authorize\b|\bauthorizeHttpRequests\b|"
                                r"\bauthorize(?:Requests)?\s*\(")
# What names a role, permission or policy inside those wrappers.
_AUTHZ_ARGS_RE = re2.compile(
    r"(?i)\b(?:Roles|Policy)\s*=|has(?:Any)?(?:Role|Authority)|hasPermission|@\w+\.\w+\(|#\w+|\bROLE_|@Secured\s*\(\s*\S|"
    r"@RolesAllowed\s*\(\s*\S|\baccess\s*\("
)


def _strength(text: str) -> int:
    """0: lets anyone in; 1: any signed-in caller; 2: a role, permission, policy or ownership check."""
    if _OPEN_GUARD_RE.search(text):
        return 0
    inner = _GUARD_WRAPPER_RE.sub(" ", text)
    if _AUTHZ_ARGS_RE.search(text) or AUTHZ_RE.search(inner):
        return 2
    return 1


def _weakened(block: object, gone: list[DiffLine]) -> tuple[int, int] | None:
    """A guard replaced by a weaker one in the same change block: `@PreAuthorize("hasRole('CLINICIAN')")` ->
    `@PreAuthorize("isAuthenticated()")` or `("permitAll()")`, `[Authorize(Roles = "Clinician")]` -> `[Authorize]`,
    `@roles_required("admin")` -> `@login_required`. Anchored on the weaker guard."""
    added = [ln for ln in block.added if _code(ln) and AUTH_RE.search(ln.text)  # type: ignore[attr-defined]
             and not _NON_AUTH_GUARD_RE.search(ln.text) and ln.new_no is not None]
    if not added:
        return None
    was = max(_strength(ln.text) for ln in gone)
    now = max(_strength(ln.text) for ln in added)
    if now >= was:
        return None
    line = next(ln.new_no for ln in added if _strength(ln.text) == now)
    return (line, now) if line is not None else None


def _global_guard_dropped(ctx: FileContext, gone: list[DiffLine]) -> bool:
    if not any(_GLOBAL_GUARD_RE.search(ln.text) for ln in gone):
        return False
    return not any(_GLOBAL_GUARD_RE.search(ln.text) for ln in ctx.added if _code(ln))


_MOUNT_RE = re2.compile(r"""\.use\s*\(\s*["'`](/[^"'`]*)["'`]""")


def _middleware_reordered(ctx: FileContext) -> Iterator[Hit]:
    """Express/Koa/Fastify register middleware in order: an auth middleware moved below a router mount no longer
    runs for that router (`app.use('/api/records', records); app.use(requireAuth);`)."""
    for hunk in ctx.file.hunks:
        if not any(x.kind == "-" for x in hunk.lines):
            continue
        pre = [x for x in hunk.lines if x.kind != "+"]
        post = [x for x in hunk.lines if x.kind != "-"]
        for k, ln in enumerate(post):
            if ln.kind != "+" or ".use" not in ln.text or _MOUNT_RE.search(ln.text) or not AUTHN_RE.search(ln.text):
                continue
            key = normalized(ln.text)
            old = next((j for j, x in enumerate(pre) if x.kind == "-" and normalized(x.text) == key), None)
            if old is None:
                continue
            # mounts now above the auth middleware that were below it before
            for x in post[:k]:
                m = _MOUNT_RE.search(x.text)
                if m is None or _PUBLIC_PATH_RE.search(m.group(1)) or AUTHN_RE.search(x.text):
                    continue
                before = next((j for j, y in enumerate(pre) if normalized(y.text) == normalized(x.text)), None)
                if before is not None and before > old and ln.new_no is not None:
                    yield Hit(ln.new_no, f"`{ln.text.strip()[:60]}` now runs after the `{m.group(1)}` router is mounted, "
                                         "so that router's routes are served without authentication. Register the "
                                         "authentication middleware before the routers it protects.")
                    break


_REMOVED_GUARD = Rule(
    id="ACC-001",
    category="access-control",
    severity="high",
    message="An authentication or authorization check is removed without a replacement. Restore it.",
    regulations=REGULATIONS,
    keywords=("auth", "login", "role", "permission", "secured", "depends", "guard", "can_", "403", "forbid",
              "access", "owner", "member", "protect", "principal", "bearer", "jwt", "token", "session"),
    check=_removed_guard,
    examples=(
        udiff('portal/labs.py', ' @bp.get("/patients/<int:pid>/labs")', '-@login_required', '+@cross_origin(origins=KIOSK)', ' def labs(pid):', '     return jsonify(load(pid))'),
        udiff('careplans/routes.py', ' @router.get("/patients/{patient_id}/care-plan")',
              '-def care_plan(patient_id: int, user=Depends(get_current_user), db=Depends(get_session)):',
              '+def care_plan(patient_id: int, db=Depends(get_session)):', '     plan = db.query(CarePlan).filter_by(patient_id=patient_id).first()'),
        udiff('Api/LabsController.cs', ' [Route("api/labs")]', '-[Authorize(Policy = "Clinician")]', '+[AllowAnonymous]', ' public class LabsController : ControllerBase'),
        udiff('Program.cs', ' builder.Services.AddAuthentication().AddJwtBearer();', '-builder.Services.AddAuthorization(options =>',
              '-    options.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());',
              '+builder.Services.AddAuthorization();', ' builder.Services.AddControllers();'),

        udiff('server/app.js', " app.use('/health', health);", "-app.use(requireAuth);", " app.use('/api/records', records);",
              "+app.use(requireAuth);", " app.use('/api/appointments', appointments);"),
        udiff('src/labs/labs.controller.ts', " @Controller('patients/:patientId/labs')", '-@UseGuards(JwtAuthGuard)',
              '+@UseGuards(ThrottlerGuard)', ' export class LabsController {'),
        udiff('src/immunizations/immunizations.controller.ts', '-import { Controller, Get, Param, UseGuards } from "@nestjs/common";',
              '+import { Controller, Get, Header, Param, UseGuards } from "@nestjs/common";', ' import { JwtAuthGuard } from "../auth/jwt-auth.guard";',
              ' ', '   @Get("certificate")', '-  @UseGuards(JwtAuthGuard, PatientAccessGuard)', '+  @Header("Content-Type", "application/json")',
              '   certificate(@Param("patientId") patientId: number) {'),
        udiff('server/app.js', " app.use('/health', health);", "-app.use('/api/admin', requireAuth, requireRole('admin'), adminRouter);",
              "+app.use('/api/admin', requireAuth, adminRouter);", " app.use('/api/records', requireAuth, records);"),
        udiff('api/AllergyController.java', '     @GetMapping', '-    @PreAuthorize("@patientAccess.canView(authentication, #patientId)")',
              '+    @PreAuthorize("permitAll()")', '     public List<AllergyDto> list(@PathVariable long patientId) {'),
        udiff('Controllers/ChartController.cs', ' [ApiController]', '-[Authorize(Roles = "Clinician,Nurse")]', '+[Authorize]',
              ' public class ChartController : ControllerBase'),
        udiff('portal/prescriptions/routes.py', ' @bp.get("/patients/<int:patient_id>/prescriptions")', '-@jwt_required()',
              '+@jwt_required(optional=True)', ' def prescriptions(patient_id: int):'),
        udiff('ehr/encounters/routes.py', ' def encounter_notes(encounter_id: int):', '-    if current_user.role not in CLINICAL_ROLES:',
              '+    if current_user.role in BLOCKED_ROLES:', '         abort(403)'),
        udiff('src/Pharmacy.Api/Program.cs', ' builder.Services.AddAuthorization(options =>', ' {',
              '-    options.AddPolicy("Pharmacist", policy => policy.RequireClaim("role", "pharmacist"));',
              '+    options.AddPolicy("Pharmacist", policy => policy.RequireAssertion(_ => true));', ' });'),
    ),
    counterexamples=(
        udiff('server/app.js', "-app.use(requireAuth);", " app.use('/health', health);", "+app.use(requireAuth);",
              " app.use('/api/records', records);"),
        udiff('server/app.js', " app.use('/health', health);", "-app.use('/api/admin', requireAuth, requireRole('admin'), adminRouter);",
              "+app.use('/api/admin', requireAuth, requireRole('admin', 'auditor'), adminRouter);", " app.use('/api/records', requireAuth, records);"),
        udiff('Program.cs', ' builder.Services.AddAuthentication().AddJwtBearer();', '-builder.Services.AddAuthorization(options =>',
              '-    options.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());',
              '+builder.Services.AddAuthorization(o => o.FallbackPolicy = Policies.AuthenticatedUser);', ' builder.Services.AddControllers();'),
        udiff('portal/labs.py', ' @bp.get("/patients/<int:pid>/labs")', '-@login_required', '+@roles_required("clinician")', ' def labs(pid):', '     return jsonify(load(pid))'),
        udiff('portal/labs.py', '-# TODO: login_required', '+# login handled by the blueprint', ' def labs(pid):', '     return 1'),
        udiff('api/AllergyController.java', '     @GetMapping', '-    @PreAuthorize("isAuthenticated()")',
              '+    @PreAuthorize("@patientAccess.canView(authentication, #patientId)")', '     public List<AllergyDto> list(@PathVariable long patientId) {'),
        udiff('Controllers/ChartController.cs', ' [ApiController]', '-[Authorize(Roles = "Clinician")]', '+[Authorize(Policy = "CareTeam")]',
              ' public class ChartController : ControllerBase'),
        udiff('ehr/encounters/routes.py', ' def encounter_notes(encounter_id: int):', '-    if current_user.role not in CLINICAL_ROLES:',
              '+    if current_user.role not in CLINICAL_ROLES | {"care_coordinator"}:', '         abort(403)'),
        udiff('server/routes/charts.js', '+const clinicianOnly = [requireAuth, requireRole("clinician")];', ' ',
              '-router.get("/patients/:id/chart", requireAuth, requireRole("clinician"), async (req, res) => {',
              '+router.get("/patients/:id/chart", ...clinicianOnly, async (req, res) => {', '   res.json(await charts.summary(req.params.id));'),
    ),
)

# ---------------------------------------------------------------- ACC-002 explicit anonymous access

_ANON_MARKER_RE = re2.compile(
    r"\[\s*AllowAnonymous\s*\]|\.AllowAnonymous\(\)|@PermitAll\b|@AnonymousAllowed\b|\.permitAll\(\)|\bAllowAny\b|"
    r"@(?:public_?route|public_?endpoint|no_?auth|skip_?auth\w*|login_exempt|unauthenticated)\b|@Public\(\)|"
    r"(?i:\b(?:auth|auth_?required|login_?required|requires_?auth|authenticated)\s*[=:]\s*(?:False|false)\b)|"
    r"authentication_classes\s*=\s*(?:\[\s*\]|\(\s*\))|permission_classes\s*=\s*(?:\[\s*\]|\(\s*\))|"
    r"^\s*security:\s*\[\s*\]|skip_before_action\s+:authenticate\w*|(?i:\banonymous\s*[=:]\s*true\b)|"
    # Spring Security's Kotlin DSL: `authorize("/api/patients/**", permitAll)`
    r"\bauthorize\s*\([^\n]*,\s*permitAll\s*\)|"
    # Spring's WebSecurityCustomizer: `web.ignoring().requestMatchers(...)` skips the whole filter chain
    r"\.ignoring\(\)\s*\.\s*(?:requestMatchers|antMatchers|mvcMatchers|regexMatchers)\s*\(|"
    # Spring method security switched off: every @PreAuthorize/@Secured becomes a no-op
    r"@Enable(?:Global)?MethodSecurity\([^)]*\b(?:prePostEnabled|securedEnabled)\s*=\s*false|"
    # Spring Data REST: the repository itself served as CRUD endpoints, beside the secured controllers
    r"@(?:RepositoryRestResource|RestResource)\([^)]*\bexported\s*=\s*true|"
    # express-jwt told to let requests without a token through (a guard made optional in place is ACC-001's `_weakened`)
    r"\bcredentialsRequired\s*:\s*false\b"
)
# With no path in sight (a Django/DRF view is routed in urls.py), the handler's or view class's own name says
# whether it is a health check or a sign-in step: `def healthz(request)`, `class LoginView(APIView)`.
_HANDLER_NAME_RE = re2.compile(
    r"^\s*(?:async\s+)?(?:def|function|func|class)\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)|"
    r"^\s*(?:public|private|protected|internal)\s+[^=(]*?\b([A-Za-z_]\w*)\s*\("
)
_PUBLIC_NAME_RE = re2.compile(
    r"(?i)^_*(?:health|ready|readiness|live|liveness|ping|status|version|heartbeat|alive|login|logout|sign_?in|"
    r"sign_?out|sign_?up|register|forgot_?password|reset_?password|token|oauth|callback|webhook|csrf|metrics|"
    r"openapi|swagger|robots|favicon)"
)


def _handler_name(lines: Sequence[DiffLine]) -> str | None:
    for ln in lines:
        m = _HANDLER_NAME_RE.search(ln.text)
        if m is not None:
            return next(g for g in m.groups() if g)
    return None
_PATH_LITERAL_RE = re2.compile(
    r"""["'`](/[^"'`\s]*)["'`]|\[\s*Route\(\s*"([^"]*)"|@\w*Mapping\(\s*(?:value\s*=\s*)?"([^"]*)\"|"""
    r"""\[\s*Http(?:Get|Post|Put|Patch|Delete|Head|Options)\(\s*"([^"]*)"|"""
    r"""@(?:Controller|Get|Post|Put|Patch|Delete|All|Head)\(\s*["'`]([^"'`]*)["'`]"""
)


def _paths_in(lines: Sequence[DiffLine]) -> list[str]:
    out: list[str] = []
    for ln in lines:
        for m in _PATH_LITERAL_RE.finditer(ln.text):
            out.append(next(g for g in m.groups() if g is not None))
    return out


def _anonymous(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    markers = ctx.lines_matching(_ANON_MARKER_RE.pattern)
    if not markers:
        return
    for hunk in ctx.file.hunks:
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no not in markers or is_comment(ln.text):
                continue
            if _IMPORT_RE.search(ln.text):
                continue  # `from rest_framework.permissions import AllowAny` names the marker, it does not apply it
            where = ctx.position(ln.new_no or 0)
            if where is None:
                continue
            post, i = where
            same = _paths_in([ln])
            if not same:
                # the marker's own target: the attribute/decorator run it sits in (`[AllowAnonymous]` then
                # `[HttpGet("login")]`), before the paths of neighbouring actions or the controller's route
                run = []
                for p in post[i + 1: i + 6]:
                    if not p.text.lstrip().startswith(("[", "@")):
                        break
                    run.append(p)
                same = _paths_in(run)
            near = same or _paths_in(post[max(0, i - 4): i + 5])
            if near and all(_PUBLIC_PATH_RE.search(p) for p in near):
                continue
            if not near:
                # the function the decorator run applies to, else the class the setting sits in
                below = _handler_name(post[i + 1: i + 6])
                above = _handler_name(list(reversed(post[max(0, i - 3): i])))
                decorator = ln.text.lstrip().startswith(("@", "["))
                name = (below or above) if decorator else (above or below)
                if name is not None and _PUBLIC_NAME_RE.search(name):
                    continue
                if _public_class(post, i):
                    continue
            if ln.new_no is not None:
                yield Hit(ln.new_no)


_CLASS_RE = re2.compile(r"^\s*(?:export\s+)?(?:(?:public|internal|sealed|abstract|final|open|data)\s+)*class\s+([A-Za-z_]\w*)")


def _public_class(post: Sequence[DiffLine], i: int) -> bool:
    """Whether the class the marker at post[i] sits in is a health check or sign-in controller, by its name or its
    own route (`@Controller('health') export class HealthController { ... @Get() @Public() check() {...} }`)."""
    base = indent_of(post[i].text)
    for j in range(i - 1, max(-1, i - 80), -1):
        text = post[j].text
        if not text.strip() or indent_of(text) >= base:
            continue
        m = _CLASS_RE.search(text)
        if m is None:
            continue
        if _PUBLIC_NAME_RE.search(m.group(1)):
            return True
        run = []
        for p in reversed(post[max(0, j - 4): j]):
            if not p.text.lstrip().startswith(("@", "[")):
                break
            run.append(p)
        paths = _paths_in(run)
        return bool(paths) and all(_PUBLIC_PATH_RE.search(x) for x in paths)
    return False


_ANONYMOUS = Rule(
    id="ACC-002",
    category="access-control",
    severity="high",
    message=(
        "This opens the endpoint to anonymous callers. Endpoints that return or change patient data must "
        "authenticate the caller: remove the anonymous/permit-all marker (keep it only for health checks, "
        "login and public assets) and require an authenticated, authorized user."
    ),
    regulations=REGULATIONS,
    keywords=("allowanonymous", "permitall", "allowany", "public", "no_auth", "noauth", "skip_auth", "skipauth",
              "login_exempt", "unauthenticated", "auth", "login", "authentication_classes", "permission_classes",
              "security:", "anonymous", "ignoring", "exported", "methodsecurity", "optional", "credentialsrequired"),
    check=_anonymous,
    examples=(
        udiff('Api/Imm.cs', ' [Route("api/patients/{id}/immunizations")]', '+[AllowAnonymous]', ' public class ImmController {}'),
        udiff('Controllers/ChartController.cs', ' [Route("login")]', ' public class ChartController : Controller', ' {',
              '+    [AllowAnonymous]', '+    [HttpGet("patients/{id}/chart")]', '+    public IActionResult Chart(string id) => View();'),
        udiff('Sec.java', ' http.authorizeHttpRequests(a -> a', '-    .anyRequest().authenticated());', '+    .anyRequest().permitAll());'),
        udiff('Security.kt', ' authorizeHttpRequests {', '+    authorize("/api/patients/**", permitAll)', '     authorize(anyRequest, authenticated)'),
        udiff('WebSecurityConfig.java', ' WebSecurityCustomizer ignore() {', '+    return web -> web.ignoring().requestMatchers("/static/**", "/api/patients/**");', ' }'),
        udiff('records/views.py', ' ', '+@api_view(["GET"])', '+@permission_classes([AllowAny])', '+def patient_summary(request, pk):',
              '+    return JsonResponse(Summary.for_patient(pk))'),
        udiff('config/SecurityConfig.java', ' @Configuration', '-@EnableMethodSecurity', '+@EnableMethodSecurity(prePostEnabled = false)',
              ' public class SecurityConfig {'),
        udiff('ehr/patients/PatientRepository.java', ' import org.springframework.data.rest.core.annotation.RepositoryRestResource;', ' ',
              '-@RepositoryRestResource(exported = false)', '+@RepositoryRestResource(path = "patients", exported = true)',
              ' public interface PatientRepository extends JpaRepository<Patient, Long> {'),
    ),
    counterexamples=(
        udiff('Api/Health.cs', ' [Route("/healthz")]', '+[AllowAnonymous]', ' public class HealthController {}'),
        udiff('src/health/health.controller.ts', " @Controller('health')", ' export class HealthController {', '+  @Public()', '+  @Get()', '+  check() {'),
        udiff('Sec.java', ' http.authorizeHttpRequests(a -> a', '+    .requestMatchers("/actuator/health", "/login").permitAll()'),
        udiff('Controllers/AccountController.cs', ' [Route("account")]', ' public class AccountController : Controller', ' {',
              '+    [AllowAnonymous]', '+    [HttpGet("login")]', '+    public IActionResult Login() => View();'),
        udiff('portal/views.py', ' ', '+@api_view(["GET"])', '+@permission_classes([AllowAny])', '+def healthz(request):',
              '+    return JsonResponse({"status": "ok"})'),
        udiff('accounts/views.py', ' ', '+class LoginView(APIView):', '+    permission_classes = [AllowAny]', '+    def post(self, request):'),
        udiff('Security.kt', ' authorizeHttpRequests {', '+    authorize("/actuator/health", permitAll)', '     authorize(anyRequest, authenticated)'),
        udiff('src/health/health.controller.ts', "+@Controller('health')", '+export class HealthController {', '+  constructor(',
              '+    private readonly health: HealthCheckService,', '+    private readonly db: PrismaHealthIndicator,', '+  ) {}', '+',
              '+  @Get()', '+  @Public()', '+  @HealthCheck()', '+  check() {'),
        udiff('config/SecurityConfig.java', ' @Configuration', '-@EnableGlobalMethodSecurity(prePostEnabled = true)', '+@EnableMethodSecurity(securedEnabled = true)',
              ' public class SecurityConfig {'),
        udiff('ehr/patients/PatientRepository.java', ' import org.springframework.data.rest.core.annotation.RepositoryRestResource;', ' ',
              '-@RepositoryRestResource(path = "patients")', '+@RepositoryRestResource(path = "patients", exported = false)',
              ' public interface PatientRepository extends JpaRepository<Patient, Long> {'),
        udiff('pharmacy/formulary/routes.py', ' @bp.get("/formulary/search")', '+@jwt_required(optional=True)', ' def search():',
              '     q = request.args.get("q", "")'),
        udiff('WebSecurityConfig.java', ' WebSecurityCustomizer ignore() {', '+    return web -> web.ignoring().requestMatchers("/static/**", "/favicon.ico");', ' }'),
    ),
)

# ---------------------------------------------------------------- ACC-003 new route without authentication

_PY_ROUTE_RE = re2.compile(
    r"""^\s*@\s*[\w.]+\.(?:route|get|post|put|patch|delete|api_route|websocket)\(\s*(?:path\s*=\s*|rule\s*=\s*)?[rf]?["']([^"']*)["']"""
)
_JS_ROUTE_RE = re2.compile(
    r"""^\s*(?:app|router|server|routes|api[A-Z]\w*|\w*[rR]outer|\w*[aA]pp)\.(?:get|post|put|patch|delete|all)\(\s*["'`](/[^"'`]*)["'`]\s*,(.*)$"""
)
_GO_ROUTE_RE = re2.compile(
    r"""^\s*[\w.]+(?:\.With\([^()]*(?:\([^()]*\)[^()]*)*\))?\.(?:HandleFunc|Handle|Get|Post|Put|Patch|Delete|GET|POST|PUT|PATCH|DELETE|Any)\(\s*"((?:[A-Z]+ )?/[^"]*)"\s*,(.*)$"""
)
_CS_MINIMAL_RE = re2.compile(r"""\.Map(?:Get|Post|Put|Patch|Delete|Methods)\(\s*@?"(/?[^"]*)"\s*,(.*)$""")
_ANNOTATED_RE = re2.compile(
    r"""^\s*(?:@(?:Get|Post|Put|Patch|Delete|Request)Mapping\b|\[\s*Http(?:Get|Post|Put|Patch|Delete)\b|@(?:GET|POST|PUT|DELETE|PATCH)\b)"""
)
_DEF_RE = re2.compile(r"^\s*(?:async\s+)?def\s")
_ROUTER_LEVEL_HINTS = ("before_", ".use", "dependencies", "requireauthorization", "useguards", "authorizationpolicy",
                       "fallbackpolicy", "[authorize")
_ROUTE_HINTS = (".get(", ".post(", ".put(", ".patch(", ".delete(", ".all(", ".route(", ".api_route(", ".websocket(",
                ".handle", ".map", ".any(")
_USE_AUTH_RE = re2.compile(r"(?i)\.use\w*\(")


def _py_route_authed(post: Sequence[DiffLine], i: int) -> bool | None:
    """Whether the Python route at post[i] carries authentication; None when its def is not visible."""
    j = i
    while j > 0 and post[j - 1].text.lstrip().startswith("@"):
        j -= 1
    k = i + 1
    while k < len(post) and not _DEF_RE.search(post[k].text):
        if not post[k].text.lstrip().startswith(("@", ")", ",")) and post[k].text.strip() and not post[k].text.startswith((" ", "\t")):
            break
        k += 1
    if k >= len(post) or not _DEF_RE.search(post[k].text):
        return None
    end = min(len(post), k + 8)
    text = "\n".join(ln.text for ln in post[j:end])
    # a role/permission decorator (`@admin_required`, `@permission_required(...)`, a project's own `@analyst_required`)
    # authenticates too
    decorators = "\n".join(ln.text for ln in post[j:k])
    return AUTHN_RE.search(text) is not None or AUTH_RE.search(decorators) is not None or any(
        _ROLE_DECORATOR_RE.search(ln.text) and not _NOT_A_GUARD_DECORATOR_RE.search(ln.text) for ln in post[j:k])


# A project's own guard decorator, named for who may call: `@analyst_required`, `@staff_only`, `@clinician_required`.
_ROLE_DECORATOR_RE = re2.compile(
    r"(?im)^\s*@(?:\w+\.)?(?:\w+_required|\w+_only|require_\w+|requires_\w+|only_\w+)\b"
)
_NOT_A_GUARD_DECORATOR_RE = re2.compile(r"(?i)@(?:\w+\.)?(?:json|body|args|params|fields|schema|content|csrf|https|ssl|feature)\w*")


def _visible_post(ctx: FileContext) -> list[list[DiffLine]]:
    return [post_lines(h) for h in ctx.file.hunks]


def _new_routes(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    language = ctx.language
    if language == "kotlin":
        yield from _ktor_routes(ctx)
    if not any_hint(ctx.added, _ROUTE_HINTS + ("mapping", "[http", "@get", "@post", "@put", "@delete", "@patch"), ctx):
        return
    posts = _visible_post(ctx)
    everything = [ln for post in posts for ln in post]
    auth_lines = [
        ln for ln in everything
        if any(t in ln.text.lower() for t in _ROUTER_LEVEL_HINTS)
        and (_ROUTER_LEVEL_RE.search(ln.text) or _USE_AUTH_RE.search(ln.text))
        and AUTHN_RE.search(ln.text)
    ] if any_hint(everything, _ROUTER_LEVEL_HINTS) else []
    if auth_lines and language == "csharp":
        # `.RequireAuthorization(...)` chained onto one `MapGet(...)` guards that endpoint, not its siblings
        auth_lines = [ln for ln in auth_lines if not _chained_to_endpoint(everything, ln)]
    if auth_lines and language == "python":
        # `@router.get("/x", dependencies=[Depends(current_clinician)])` guards that route, not the router
        auth_lines = [ln for ln in auth_lines if not ln.text.lstrip().startswith("@")]
    if auth_lines:
        # Router-level authentication covers the routes in its block; a new route registered at a shallower
        # indent than every such line (chi's `r.Group(func(r chi.Router) { r.Use(auth); ... })` with the route
        # added outside the group) is not under it.
        shallowest = min(indent_of(ln.text) for ln in auth_lines)
        if language not in ("go", "javascript", "typescript") or all(
            indent_of(ln.text) >= shallowest for ln in ctx.added if any(t in ln.text.lower() for t in _ROUTE_HINTS)
        ):
            return
    if language == "python":
        yield from _python_routes(posts, ctx)
    elif language in ("javascript", "typescript"):
        yield from _arg_routes(posts, _JS_ROUTE_RE, need_sibling=False, ctx=ctx)
    elif language == "go":
        yield from _arg_routes(posts, _GO_ROUTE_RE, need_sibling=True, ctx=ctx)
    elif language == "csharp":
        for hit in _arg_routes(posts, _CS_MINIMAL_RE, need_sibling=False, lookahead=6, ctx=ctx):
            if not _on_unseen_group(ctx, everything, hit.line):
                yield hit
        yield from _annotated_routes(posts, ctx)
    elif language in ("java", "kotlin"):
        yield from _annotated_routes(posts, ctx)


_KTOR_ROUTE_RE = re2.compile(r"""^\s*(?:get|post|put|patch|delete|route)\s*\(\s*"([^"]*)"\s*\)\s*\{""")


def _ktor_routes(ctx: FileContext) -> Iterator[Hit]:
    """Ktor authenticates by nesting: routes inside `authenticate("jwt") { ... }` need a principal, routes beside
    that block do not. A new route of a file that visibly uses `authenticate` is reported when no enclosing block
    (by indentation) is an `authenticate(...)` one."""
    if not ctx.lines_matching(r"\bauthenticate\s*\("):
        return
    for number in sorted(ctx.lines_matching(_KTOR_ROUTE_RE.pattern)):
        where = ctx.position(number)
        if where is None:
            continue
        post, i = where
        ln = post[i]
        if ln.kind != "+":
            continue
        m = _KTOR_ROUTE_RE.search(ln.text)
        if m is None or _PUBLIC_PATH_RE.search("/" + m.group(1).lstrip("/")) or m.group(1).strip("/") == "":
            continue
        depth = indent_of(ln.text)
        authed = seen_top = False
        for p in reversed(post[:i]):
            if not p.text.strip() or indent_of(p.text) >= depth:
                continue
            depth = indent_of(p.text)
            if "authenticate" in p.text:
                authed = True
                break
            if re2.search(r"^\s*(?:routing\s*\{|fun\s)", p.text):
                seen_top = True
                break
        if not authed and seen_top:
            yield Hit(number, _ROUTE_MESSAGE)


_APP_RECEIVERS = frozenset({"app", "endpoints", "routes", "builder", "web", "application", "e", "endpointRouteBuilder"})


def _on_unseen_group(ctx: FileContext, lines: list[DiffLine], number: int) -> bool:
    """ASP.NET minimal APIs put authorization on the route group (`app.MapGroup("/patients").RequireAuthorization()`):
    an endpoint mapped on a group variable whose creation is not in sight, with no sibling of that group carrying its
    own `.RequireAuthorization`, is judged by the group, not reported."""
    where = ctx.position(number)
    if where is None:
        return False
    receiver = _receiver(where[0][where[1]].text)
    if not receiver or receiver in _APP_RECEIVERS:
        return False
    created = re2.compile(r"\b" + receiver.replace(".", r"\.") + r"\s*=\s*[\w.]+\.MapGroup\(")
    if any(created.search(ln.text) for ln in lines):
        return False
    return not any("RequireAuthorization" in ln.text for ln in lines)


def _chained_to_endpoint(lines: list[DiffLine], ln: DiffLine) -> bool:
    """Whether `ln` (`.RequireAuthorization()` on its own line) continues a `MapGet(...)` endpoint above it."""
    if not ln.text.lstrip().startswith("."):
        return False
    k = next((j for j, x in enumerate(lines) if x is ln), None)
    if k is None:
        return False
    for x in reversed(lines[max(0, k - 4): k]):
        if _CS_MINIMAL_RE.search(x.text):
            return "MapGroup" not in x.text
        if x.text.rstrip().endswith(";"):
            return False
    return False


def _python_routes(posts: list[list[DiffLine]], ctx: FileContext | None = None) -> Iterator[Hit]:
    unauth_sibling = False
    candidates: list[int] = []
    matching = ctx.lines_matching(_PY_ROUTE_RE.pattern) if ctx is not None else None
    for post in posts:
        for i, ln in enumerate(post):
            if matching is not None and ln.new_no not in matching:
                continue
            if "@" not in ln.text:
                continue
            m = _PY_ROUTE_RE.search(ln.text)
            if not m or _PUBLIC_PATH_RE.search(m.group(1)) or m.group(1) in ("", "/"):
                continue
            authed = _py_route_authed(post, i)
            if ln.kind == "+":
                if authed is False and ln.new_no is not None:
                    candidates.append(ln.new_no)
            elif authed is False:
                unauth_sibling = True
    if not unauth_sibling:
        for number in candidates:
            yield Hit(number, _ROUTE_MESSAGE)


# `api := r.Group("/api", authMiddleware())`, `api.Use(requireAuth)`: routes on that receiver are authenticated.
_AUTHED_GROUP_RE = re2.compile(
    r"^\s*(?:(?:const|let|var)\s+)?([\w.]+)\s*:?=\s*[\w.]+\.(?:Group|Route|With|Subrouter|PathPrefix|Router)\w*\((.*)$|"
    r"^\s*([\w.]+)\.Use\w*\((.*)$"
)


# A middleware passed by a bare name that says what it is: `r.Group("/api", auth)`, `.Use(requireAuth)`.
_AUTH_ARG_RE = re2.compile(
    r"(?i)(?:^|[\s,(.])(?:auth|authn|authz|auth_?mw|auth_?middleware|require_?auth\w*|jwt\w*|mw\s*\.\s*auth\w*)"
    r"(?:\s*\(\s*\))?\s*(?:[,)]|$)"
)


# A handler wrapped in an authentication middleware function: Go's `mux.Handle("/api/labs/", s.auth(s.labs))`.
_AUTH_WRAP_RE = re2.compile(
    r"(?i)(?:^|[\s,(.])(?:auth|authn|authed|authenticated?|require_?(?:auth\w*|token|user|session)|with_?auth\w*|"
    r"protect(?:ed)?|jwt\w*|must_?auth\w*|ensure_?auth\w*)\s*\(\s*[\w.&]"
)


def _authed_receivers(posts: list[list[DiffLine]], matching: frozenset[int] | None = None) -> dict[str, int]:
    """Receiver name -> the shallowest indent of a line that authenticates it (a route registered on that name
    at a shallower indent is outside the block: another variable of the same name).
    `matching`: the lines `_AUTHED_GROUP_RE` matches (`ctx.lines_matching`), when known; others are skipped."""
    out: dict[str, int] = {}
    for post in posts:
        for ln in post:
            if matching is not None and ln.new_no not in matching:
                continue
            if "(" not in ln.text:
                continue
            m = _AUTHED_GROUP_RE.search(ln.text)
            if m is None:
                continue
            name, args = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            if AUTHN_RE.search(args) or _AUTH_ARG_RE.search(args):
                out[name] = min(out.get(name, 1 << 30), indent_of(ln.text))
    return out


def _receiver(text: str) -> str:
    head = text.strip().split("(", 1)[0]
    return head.rsplit(".", 1)[0] if "." in head else ""


def _arg_routes(
    posts: list[list[DiffLine]], pattern: object, *, need_sibling: bool, lookahead: int = 1, ctx: FileContext | None = None
) -> Iterator[Hit]:
    """With `ctx`, lines that `pattern` and `_AUTHED_GROUP_RE` cannot match are found in one pass per file and skipped."""
    authed_sibling = unauth_sibling = False
    candidates: list[int] = []
    receivers = _authed_receivers(posts, ctx.lines_matching(_AUTHED_GROUP_RE.pattern) if ctx is not None else None)
    matching = ctx.lines_matching(pattern.pattern) if ctx is not None else None  # type: ignore[attr-defined]
    for post in posts:
        for i, ln in enumerate(post):
            if matching is not None and ln.new_no not in matching:
                continue
            low = ln.text.lower()
            if not any(t in low for t in _ROUTE_HINTS):
                continue
            m = pattern.search(ln.text)  # type: ignore[attr-defined]
            if not m:
                continue
            path = m.group(1)
            args = " ".join([m.group(2)] + [p.text for p in post[i + 1: i + lookahead]])
            if lookahead > 1:
                args = args.split(";", 1)[0]
            prefix = ln.text[: m.start(1)]
            authed = AUTHN_RE.search(args) is not None or _AUTH_WRAP_RE.search(args) is not None or (
                ctx is not None and not ctx.memo("acc-guard-aliases", lambda: _guard_aliases(ctx)).isdisjoint(
                    _WORD_TOKENS_RE.findall(args))
            ) or (
                ".With(" in prefix and (AUTHN_RE.search(prefix) is not None or _AUTH_ARG_RE.search(prefix) is not None
                                        or re2.search(r"(?i)require\w*|token|session", prefix) is not None)
            ) or (
                bool(receivers) and indent_of(ln.text) >= receivers.get(_receiver(ln.text), 1 << 30)
            )
            if _PUBLIC_PATH_RE.search(path) or path.strip() in ("", "/"):
                continue
            if ln.kind == "+":
                if not authed and ln.new_no is not None:
                    candidates.append(ln.new_no)
            elif authed:
                authed_sibling = True
            else:
                unauth_sibling = True
    if ctx is not None and not unauth_sibling:
        # git's hunk header names the enclosing route when it starts above the hunk: a sibling route of the same
        # router registered without per-route authentication says the router is authenticated where it is mounted
        for hunk in ctx.file.hunks:
            hm = pattern.search(hunk.header.strip()) if hunk.header else None  # type: ignore[attr-defined]
            if hm is not None and not _PUBLIC_PATH_RE.search(hm.group(1)) and AUTHN_RE.search(hm.group(2)) is None:
                unauth_sibling = True
    if receivers:
        authed_sibling = True  # the file visibly authenticates a router or group, and these routes are not on it
    if unauth_sibling and not authed_sibling:
        return
    if need_sibling and not authed_sibling:
        return
    for number in candidates:
        yield Hit(number, _ROUTE_MESSAGE)


def _annotated_routes(posts: list[list[DiffLine]], ctx: FileContext | None = None) -> Iterator[Hit]:
    """Spring/JAX-RS/ASP.NET controller methods: authentication is usually global, so only a new method
    that lacks the method-level guard its visible siblings carry is reported."""
    authed_sibling = False
    candidates: list[int] = []
    matching = ctx.lines_matching(_ANNOTATED_RE.pattern) if ctx is not None else None
    for post in posts:
        for i, ln in enumerate(post):
            if matching is not None and ln.new_no not in matching:
                continue
            if "mapping" not in ln.text.lower() and "http" not in ln.text.lower() and "@" not in ln.text:
                continue
            if not _ANNOTATED_RE.search(ln.text):
                continue
            j = i
            while j > 0 and post[j - 1].text.lstrip().startswith(("@", "[")):
                j -= 1
            k = i
            while k + 1 < len(post) and post[k + 1].text.lstrip().startswith(("@", "[")):
                k += 1
            stack = "\n".join(p.text for p in post[j: k + 2])
            if _PUBLIC_PATH_RE.search(stack) and not re2.search(r"(?i)patient|record|chart", stack):
                continue
            authed = AUTHN_RE.search(stack) is not None
            if ln.kind == "+":
                if not authed and ln.new_no is not None:
                    candidates.append(ln.new_no)
            elif authed:
                authed_sibling = True
    if authed_sibling:
        for number in candidates:
            yield Hit(number, _ROUTE_MESSAGE)


_ROUTE_MESSAGE = (
    "This new endpoint has no authentication: nothing on the route, its decorators/middleware or its "
    "signature checks who is calling, so anyone who can reach the service can call it. Require an "
    "authenticated user (e.g. `@login_required`, `Depends(current_user)`, auth middleware, "
    "`.RequireAuthorization()`) and check that they may see the patient."
)

_NEW_ROUTE = Rule(
    id="ACC-003",
    category="access-control",
    severity="high",
    message=_ROUTE_MESSAGE,
    regulations=REGULATIONS,
    languages=frozenset({"python", "javascript", "typescript", "go", "csharp", "java", "kotlin"}),
    keywords=("route", "authenticate(", ".get(", ".post(", ".put(", ".patch(", ".delete(", ".all(", "handle", "mapping", "map",
              "httpget", "httppost", "httpput", "httpdelete", "@get", "@post"),
    check=_new_routes,
    examples=(
        udiff('research/routes.py', ' bp = Blueprint("cohorts", __name__)', ' ', '+@bp.post("/cohorts/<int:cid>/export")', '+def export(cid):', '+    rows = load(cid)', '+    return jsonify(rows)'),
        udiff('research/cohort_pick.py', ' bp = Blueprint("cohort_pick", __name__)', ' ', '+@bp.get("/cohorts/<int:cohort_id>/pick")',
              '+@json_required', '+def pick(cohort_id: int):', '+    return jsonify(rows(cohort_id))'),
        udiff('server/routes/labs.js', ' const router = express.Router();', '+router.get("/patients/:id/labs", async (req, res) => res.json(await labs(req.params.id)));', ' module.exports = router;'),
        udiff('internal/server/routes.go', ' func (s *Server) Routes(r *gin.Engine) {', '+\tr.GET("/api/v1/patients/:id/allergies", s.getAllergies)',
              ' \tapi := r.Group("/api/v1", s.authMiddleware())', ' \tapi.GET("/patients/:id", s.getPatient)'),
        udiff('internal/api/routes.go', ' \tr := chi.NewRouter()', '+\tr.Get("/patients/{patientID}/immunizations", h.ListImmunizations)',
              ' ', ' \tr.Group(func(r chi.Router) {', ' \t\tr.Use(auth)'),
        udiff('internal/server/routes.go', ' \tpublic := r.Group("/api")', ' \tpublic.POST("/auth/login", s.login)',
              '+\tpublic.GET("/patients/:id/allergies", s.allergies)', ' ', ' \tauthed := r.Group("/api", s.requireToken())',
              ' \tauthed.GET("/patients/:id", s.patient)'),
        udiff('Api/PatientEndpoints.cs', ' public static class PatientEndpoints', ' {',
              '     group.MapGet("/{id:guid}/summary", async (Guid id, IPatientQueries q) => Results.Ok(await q.SummaryAsync(id)))',
              '         .RequireAuthorization("Clinician");', '+    group.MapGet("/{id:guid}/medications", async (Guid id, IPatientQueries q) =>',
              '+        Results.Ok(await q.ActiveMedicationsAsync(id)));'),
        udiff('internal/server/routes.go', ' \tmux.HandleFunc("/healthz", s.health)', ' \tmux.Handle("/api/labs/", s.auth(s.labs))',
              '+\tmux.Handle("/api/records/", s.records)', ' \treturn mux'),
        udiff('internal/api/register.go', ' func (s *Server) Register(r *gin.Engine) {', ' \tauthorized := r.Group("/api", s.Auth())',
              ' \tauthorized.GET("/patients/:id", s.patient)', '-\tauthorized.GET("/patients/:id/documents", s.documents)',
              '+\tr.GET("/api/patients/:id/documents", s.documents)', ' }'),
        udiff('internal/api/routes.go', ' \te.GET("/healthz", s.health)', '+\te.GET("/patients/:id/discharge-summary", s.dischargeSummary)', ' ',
              ' \tg := e.Group("/api", echojwt.WithConfig(s.jwtConfig()))', ' \tg.GET("/patients/:id", s.patient)'),
        udiff('vitals/api/VitalsRoutes.kt', ' fun Application.vitalsRoutes(repo: VitalsRepository) {', '     routing {',
              '         get("/health") { call.respondText("ok") }', '+        get("/api/patients/{id}/vitals/latest") {',
              '+            call.respond(repo.latestFor(call.parameters["id"]!!.toLong()))', '+        }', '         authenticate("auth-jwt") {'),
    ),
    counterexamples=(
        udiff('Api/PatientEndpoints.cs', ' public static class PatientEndpoints', ' {',
              '+    group.MapGet("/{id:guid}/summary", async (Guid id, IPatientQueries q) => Results.Ok(await q.SummaryAsync(id)))',
              '+        .RequireAuthorization("Clinician");', '+    group.MapGet("/{id:guid}/labs", async (Guid id, IPatientQueries q) =>',
              '+        Results.Ok(await q.LabsAsync(id))).RequireAuthorization("Clinician");'),
        udiff('internal/server/routes.go', ' \tmux.HandleFunc("/healthz", s.health)', ' \tmux.Handle("/api/labs/", s.auth(s.labs))',
              '+\tmux.Handle("/api/records/", s.auth(s.records))', ' \treturn mux'),
        udiff('Endpoints/ProblemListEndpoints.cs', '             return Results.Ok(problems);', '         });', '+',
              '+        group.MapGet("/export", async (Guid patientId, EhrDbContext db) =>', '+        {',
              '+            return Results.Ok(await db.Problems.Where(p => p.PatientId == patientId).ToListAsync());', '+        });', '     }'),
        udiff('vitals/api/VitalsRoutes.kt', ' fun Application.vitalsRoutes(repo: VitalsRepository) {', '     routing {',
              '         authenticate("auth-jwt") {', '+            get("/api/patients/{id}/vitals/latest") {',
              '+                call.respond(repo.latestFor(call.parameters["id"]!!.toLong()))', '+            }', '         }'),
        udiff('portal/routes.py', ' bp = Blueprint("problems", __name__)', ' ', '+@bp.get("/patients/<int:pid>/problems")', '+@login_required', '+def problems(pid):', '+    return jsonify(load(pid))', '+'),
        udiff('api/health.py', ' router = APIRouter()', ' ', '+@router.get("/healthz")', '+def healthz():', '+    return {"ok": True}'),
        udiff('cpoe/order_sets.py', ' bp = Blueprint("order_sets", __name__)', ' ', '+@bp.post("/order-sets/import")', '+@admin_required',
              '+def import_order_set():', '+    apply_order_set(request.get_json())'),
        udiff('research/cohort_pick.py', ' bp = Blueprint("cohort_pick", __name__)', ' ', '+@bp.get("/cohorts/<int:cohort_id>/pick")',
              '+@analyst_required', '+def pick(cohort_id: int):', '+    return jsonify(rows(cohort_id))'),
        udiff('server/routes/labs.js', ' const router = express.Router();', '+router.get("/patients/:id/labs", requireAuth, async (req, res) => res.json(await labs(req.params.id)));', ' module.exports = router;'),
        udiff('internal/server/routes.go', ' func (s *Server) Routes(r *gin.Engine) {', ' \tapi := r.Group("/api/v1", s.authMiddleware())',
              ' \tapi.GET("/patients/:id", s.getPatient)', '+\tapi.GET("/patients/:id/problems", s.getProblems)'),
        udiff('internal/server/routes.go', ' \tpublic := r.Group("/api")', ' \tpublic.POST("/auth/login", s.login)', ' ',
              ' \tauthed := r.Group("/api", s.requireToken())', ' \tauthed.GET("/patients/:id", s.patient)',
              '+\tauthed.GET("/patients/:id/allergies", s.allergies)'),
        udiff('server/routes/charts.js', ' const router = express.Router();', '+const clinicianOnly = [requireAuth, requireRole("clinician")];', ' ',
              '+router.get("/patients/:id/chart", ...clinicianOnly, async (req, res) => {', '+  res.json(await charts.summary(req.params.id));', '+});'),
        udiff('internal/api/routes.go', ' \tr.Group(func(r chi.Router) {', ' \t\tr.Use(auth)',
              '+\t\tr.Get("/patients/{patientID}/immunizations", h.ListImmunizations)', ' \t\tr.Get("/patients/{patientID}", h.GetPatient)'),
        "diff --git a/server/routes/patients.js b/server/routes/patients.js\n--- a/server/routes/patients.js\n"
        "+++ b/server/routes/patients.js\n@@ -10,3 +10,6 @@ router.get(\"/patients/:id/medications\", async (req, res) => {\n"
        "   res.json(meds);\n });\n \n+router.get(\"/patients/:id/immunizations\", async (req, res) => {\n"
        "+  res.json(await shots(req.params.id));\n+});\n",
    ),
)

# ---------------------------------------------------------------- ACC-004 backdoors and bypass switches

_REQUEST_INPUT = (
    r"(?:\b(?:req|request|ctx|context|r|c|event|self\.request|this\.request|HttpContext\.Request|Request)\s*\.\s*"
    r"(?:headers?|get_?header|header|cookies?|query|args|params|query_?params|querystring|form|GET|POST|META|Headers|"
    r"Cookies|Query|Form|get)\b|"
    # Go net/http and gin/echo/fiber, servlet: `r.URL.Query().Get("debug")`, `c.GetHeader("X")`, `request.getParameter("x")`
    r"\b(?:r|req|request)\s*\.\s*(?:URL\s*\.\s*Query\(\)\s*\.\s*Get|FormValue|PostFormValue|PathValue|getParameter)\s*\(|"
    r"\b(?:c|ctx)\s*\.\s*(?:GetHeader|QueryParam|FormValue|Cookie)\s*\()"
)
_REQUEST_LITERAL_RE = re2.compile(
    r"""(?i)""" + _REQUEST_INPUT + r"""[^;{]{0,80}?(?:===?|!==?|\.equals\(|\bequals\b)\s*["'][^"']+["']|"""
    r"""["'][^"']+["']\s*(?:===?|\.equals\(|\.Equals\()\s*""" + _REQUEST_INPUT
)
_BORING_HEADER_RE = re2.compile(
    r"(?i)content-type|accept|user-agent|x-forwarded-proto|x-requested-with|upgrade|origin|if-none-match|"
    r"content-encoding|x-forwarded-for|connection|\.method\b|format|lang|locale|page|sort|order|limit"
)
_BYPASS_WORD_RE = re2.compile(
    r"(?i)debug|override|bypass|support|admin|internal|backdoor|skip|impersonat|master|superuser|letmein|"
    r"god|test|magic|secret|emergency|break[-_]?glass|root"
)
_GRANTS_IDENTITY_RE = re2.compile(
    r"(?i)next\(\)|return\s+(?:true|next|handler|view|f|func)|is_?admin|roles?\s*[:=]|\buser\s*[:=]|"
    r"authenticated\s*=|skip|bypass|login_user|set_?user|principal|next\.ServeHTTP|\.Next\(\)|chain\.doFilter|"
    r"await\s+(?:next|call_next)\s*\(|return\s+await\s+(?:next|call_next)"
)
_BYPASS_FLAG_RE = re2.compile(
    r"(?i)(?:\b(?:skip|bypass|disable|no)[_\-]?(?:auth\w*|login|permission\w*|acl|security|authz|authn)\b|"
    r"\b(?:auth\w*|login|security)[_\-]?(?:disabled|bypass|off)\b)"
    r"(?:[\"']?\s*(?:=|:|=>)\s*[\"']?(?:True|true|1|yes|on)\b|[^=:\n]*:\s*$|\s*\)?\s*(?:\{|:|&&|\|\||\bthen\b))|"
    r"^\s*(?:if|elif|unless)\b.*\b(?:skip|bypass|disable|no)[_\-]?(?:auth\w*|login)\b|"
    r"LOGIN_DISABLED\s*=\s*True|"
    r"(?:password|passwd|pwd|passcode)\s*===?\s*[\"'][^\"']+[\"']"
)
_TOKEN_UNVERIFIED_RE = re2.compile(
    r"(?i:verify_?signature[\"']?\s*[:=]\s*False|verify_?exp[\"']?\s*[:=]\s*False|algorithms?\s*[:=]\s*\[?\s*[\"']none[\"']|"
    r"algorithms?\s*[:=]\s*\[[^\]\n]*[\"']none[\"']|\bAlgorithm\s*\.\s*none\s*\(|"
    r"ignoreExpiration\s*:\s*true|jwt\.decode\([^)]*verify\s*=\s*False|"
    r"Validate(?:IssuerSigningKey|Lifetime|Issuer)\s*=\s*false|RequireSignedTokens\s*=\s*false|"
    r"RequireExpirationTime\s*=\s*false|parseUnsecuredClaims|\.unsecured\(\)|\bParseUnverified\s*\(|"
    # golang-jwt without exp/nbf/iat checks; .NET's SignatureValidator hook (usually `=> new JwtSecurityToken(token)`);
    # jose4j's skip switches
    r"\bWithoutClaimsValidation\s*\(\)|\bSkipClaimsValidation\s*[:=]\s*true|\bSignatureValidator\s*=[^=]|"
    r"\bsetSkipSignatureVerification\s*\(\)|\bsetSkipAllValidators\s*\(\)|\bsetDisableRequireSignature\s*\(\))|"
    # jsonwebtoken's decode() never checks the signature: its result must not become the caller's identity
    r"(?:(?:req|request|ctx|ctx\.state|res\.locals)\.\w+|\b(?:user|claims|principal|identity|caller)\w*)\s*=\s*(?:await\s+)?"
    r"jwt\.decode\(\s*[\w.\[\]]+\s*(?:,\s*\{[^}]*\})?\s*\)"
)
# A request value whose very name says it is a way around the login: `req.query.debug_token`, `request.args["override"]`,
# `r.Header.Get("X-Support-Bypass")`.
_REQUEST_BYPASS_KEY_RE = re2.compile(
    r"(?i)" + _REQUEST_INPUT + r"""\s*(?:\.\s*|\[\s*["']|\(\s*["']|\.\s*get\(\s*["'])[\w\-]*"""
    r"(?:debug|override|bypass|backdoor|impersonat|master|magic|skip_?auth|support|god_?mode|letmein|emergency|break[-_]?glass)"
)
_FALSE_VALUE_RE = re2.compile(r"""(?i)[=:]\s*["']?(?:false|0|no|off)\b""")


# A request header (or parameter) read by its literal name; group 1 is the name.
_IDENTITY_HEADER_RE = re2.compile(
    r"(?i)(?:\.\s*(?:GetHeader|get_?header|header|Header\s*\.\s*Get|headers\s*\.\s*get|Headers\s*\.\s*Get(?:Values)?|"
    r"getHeader|get|Query|query|param|Param)\s*\(|\b(?:headers|Headers|META|query|params|args)\s*\[)\s*[\"']([\w.\-]+)[\"']"
)
# Header names that carry an identity: the caller names who they are.
_IDENTITY_HEADER_NAME_RE = re2.compile(
    r"(?i)^(?:http_)?x[-_](?:remote[-_])?(?:user|user[-_]?id|role|roles|principal|impersonat\w*|as[-_]user|debug[-_]user)$"
)
# The body makes the value the request's identity (Go context keys, gin's c.Set, req.user = ...).
_SETS_IDENTITY_RE = re2.compile(
    r"(?i)\.Set\(\s*[\"'](?:user|user_?id|principal|role|roles|claims|identity)[\"']|"
    r"WithValue\([^,]*,\s*\w*(?:user|principal|identity)\w*(?:Key)?\s*,|"
    r"\b(?:req|request|ctx|context|g|res\.locals)\s*\.\s*(?:user|principal|identity|current_?user)\s*=[^=]|"
    r"\bcurrent_?user\s*=[^=]|login_user\(|set_?user\("
)


# The request path compared with a literal: `request.path.startswith("/api/x")`, `req.path === "/x"`,
# `strings.HasPrefix(r.URL.Path, "/x")`, `context.Request.Path.StartsWithSegments("/x")`.
_PATH_TEST_RE = re2.compile(
    r"(?i)\b(?:request\.path(?:_info)?|req\.(?:path|url|originalUrl|baseUrl)|request\.url(?:\.path)?|r\.URL\.Path|"
    r"c\.Request\.URL\.Path|c\.FullPath\(\)|c\.Path\(\)|(?:Http)?Context\.Request\.Path|Request\.Path|"
    r"request\.getRequestURI\(\)|request\.getServletPath\(\)|ctx\.(?:path|url))\b"
)
_PATH_ARG_RE = re2.compile(r"""["'`](/[^"'`\s]*)["'`]""")
# what an authentication hook does to let a request through unchecked
_PASS_THROUGH_RE = re2.compile(
    r"(?i)\breturn\s*(?:None|nil|true|next\s*\(|await\s+(?:next|call_next)\s*\(|call_next\s*\(|;|$)|"
    r"\bnext\s*\(\s*\)|next\.ServeHTTP|chain\.doFilter|\.Next\(\)|await\s+_?next\s*\("
)
_AUTH_HOOK_RE = re2.compile(
    r"(?i)before_(?:app_)?request|middleware|authenticat|require_?(?:auth|session|login|user)|session|"
    r"\bauth\w*|login|token|OncePerRequestFilter|doFilter|canActivate|Invoke(?:Async)?\s*\(|ServeHTTP"
)


def _path_exemptions(ctx: FileContext, hunk: Hunk, post: list[DiffLine], candidates: set[int]) -> Iterator[int]:
    """An authentication hook (before_request, middleware, filter, guard) that now lets a non-public path
    through before it checks anything: `if request.path.startswith("/api/patients/export"): return None`."""
    removed: str | None = None
    for i, ln in enumerate(post):
        if ln.kind != "+" or ln.new_no not in candidates or is_comment(ln.text):
            continue
        text = ln.text
        if removed is None:
            removed = "\n".join(x.text for x in hunk.lines if x.kind == "-")
        new_paths = [p for p in _PATH_ARG_RE.findall(text) if p not in removed]
        if not new_paths or all(_PUBLIC_PATH_RE.search(p) for p in new_paths):
            continue
        body = text + "\n" + "\n".join(x.text for x in _body_under(post, i))
        if _PASS_THROUGH_RE.search(body) is None:
            continue
        above = "\n".join(x.text for x in post[max(0, i - 8): i]) + "\n" + hunk.header
        if _AUTH_HOOK_RE.search(above) is None:
            continue
        # the check the hook exists for must follow: a session/token lookup or a 401/403 below the exemption
        below = "\n".join(x.text for x in post[i + 1: i + 10])
        if AUTH_RE.search(below) is None and re2.search(r"\b40[13]\b|session|token|Unauthori[sz]ed|Forbidden", below) is None:
            continue
        yield ln.new_no


def _body_under(post: Sequence[DiffLine], i: int, limit: int = 3) -> list[DiffLine]:
    """The lines indented under post[i] (the body of an `if`), at most `limit`."""
    base = indent_of(post[i].text)
    body: list[DiffLine] = []
    for ln in post[i + 1: i + 1 + limit]:
        if not ln.text.strip() or indent_of(ln.text) <= base:
            break
        body.append(ln)
    return body


def _backdoor(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    # A line yields only when one of these three matches it: find those lines in one pass each.
    exempt: set[int] = set()
    path_tests = {x.new_no for x in ctx.scan(_PATH_TEST_RE.pattern, lower=False)} | {
        x.new_no for x in ctx.scan("HasPrefix", lower=False)}
    if path_tests:
        for hunk in ctx.file.hunks:
            for number in _path_exemptions(ctx, hunk, post_lines(hunk), path_tests):  # type: ignore[arg-type]
                exempt.add(number)
                yield Hit(number, "This lets requests for a patient-data path through the authentication hook "
                                  "without a session or token check. Only health checks, sign-in and public assets may "
                                  "be exempt; remove the exemption.")
    candidates = (ctx.lines_matching(_REQUEST_LITERAL_RE.pattern) | ctx.lines_matching(_BYPASS_FLAG_RE.pattern)
                  | ctx.lines_matching(_TOKEN_UNVERIFIED_RE.pattern) | ctx.lines_matching(_IDENTITY_HEADER_RE.pattern)
                  | ctx.lines_matching(_REQUEST_BYPASS_KEY_RE.pattern))
    candidates = frozenset(candidates) - exempt
    if not candidates:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no not in candidates:
                continue
            if is_comment(ln.text) or ln.new_no is None or ln.text.lstrip().startswith(("assert ", ">>>")):
                continue
            text = ln.text
            m = _REQUEST_LITERAL_RE.search(text)
            if m is not None and _BORING_HEADER_RE.search(m.group(0)) is None:
                if _BYPASS_WORD_RE.search(text):
                    yield Hit(ln.new_no)
                    continue
                if text.lstrip().startswith(("if ", "if(", "elif ", "unless ")) and AUTH_RE.search(text) and (
                        re2.search(r"(?i)\b(?:and|&&|or|\|\|)\b", text) or "&&" in text or "||" in text):
                    # `if not (user.is_authenticated and user.can_view(p)) and request.GET.get("preview") != "1":`:
                    # a request value compared with a literal, folded into the auth check itself
                    yield Hit(ln.new_no)
                    continue
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                after = "\n".join(p.text for p in _body_under(post, i)) if i is not None else ""
                if _GRANTS_IDENTITY_RE.search(after) and "40" not in after:
                    yield Hit(ln.new_no)
                    continue
            if _REQUEST_BYPASS_KEY_RE.search(text) and re2.search(r"^\s*(?:if|elif|unless|else\s+if)\b", text):
                # `if (req.query.debug_token && req.query.debug_token === process.env.DEBUG_TOKEN) { req.user = {...}; return next(); }`
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                body = "\n".join(p.text for p in _body_under(post, i)) if i is not None else ""
                if (_GRANTS_IDENTITY_RE.search(body) or _SETS_IDENTITY_RE.search(body)) and "40" not in body:
                    yield Hit(ln.new_no)
                    continue
            h = _IDENTITY_HEADER_RE.search(text)
            if h is not None and (_BYPASS_WORD_RE.search(h.group(1)) or _IDENTITY_HEADER_NAME_RE.search(h.group(1))):
                # `if u := c.GetHeader("X-Debug-User"); u != "" { c.Set("user", u) }`: the header becomes the caller
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                body = "\n".join(p.text for p in _body_under(post, i)) if i is not None else ""
                if _SETS_IDENTITY_RE.search(body):
                    yield Hit(ln.new_no)
                    continue
            if _BYPASS_FLAG_RE.search(text) and _FALSE_VALUE_RE.search(text) is None:
                yield Hit(ln.new_no)
            elif _TOKEN_UNVERIFIED_RE.search(text):
                yield Hit(ln.new_no, "The token is accepted without verifying its signature, algorithm or expiry, so "
                          "anyone can forge an identity. Verify signature, algorithm allow-list, issuer and expiry.")


_BACKDOOR = Rule(
    id="ACC-004",
    category="access-control",
    severity="critical",
    message=(
        "This is an authentication bypass: a request header, parameter, magic value or switch lets the caller skip "
        "the normal login and authorization checks. Remove it; support and break-glass access must go through "
        "named, audited accounts with their own authentication."
    ),
    regulations=REGULATIONS,
    keywords=("header", "cookie", "query", "args", "params", "form", "getparameter", "skip", "bypass", "disable", "no_auth", "path",
              "url", "hasprefix", "request.get", "request.post", "request.meta",
              "noauth", "login_disabled", "password", "passwd", "pwd", "passcode", "verify", "algorithm",
              "ignoreexpiration", "validate", "claimsvalidation", "signaturevalidator", "setskip", "disablerequiresignature", "parseunverified", "requiresignedtokens", "requireexpirationtime", "unsecured", "jwt.decode"),
    check=_backdoor,
    examples=(
        udiff('server/auth.js', ' function requireAuth(req, res, next) {', '+  if (req.headers["x-support-override"] === "letmein") {', '+    return next();', '+  }', '   const header = req.headers.authorization;'),
        udiff('ehr/settings.py', ' DEBUG = False', '+SKIP_AUTH = True'),
        udiff('src/middleware/auth.js', "     const token = (req.headers.authorization || '').replace('Bearer ', '');",
              '-    req.user = jwt.verify(token, process.env.JWT_PUBLIC_KEY);', '+    req.user = jwt.decode(token);', '     next();'),
        udiff('api/blueprint.py', ' @bp.before_request', ' def require_session():',
              '-    if request.path in PUBLIC_PATHS:', '+    if request.path in PUBLIC_PATHS or request.path.startswith("/api/patients/export"):',
              '         return None', '     session = current_session()', '     if session is None:', '         abort(401)'),
        udiff('ehr/discharge/views.py', ' def discharge_summary(request, doc_id):', '     doc = get_object_or_404(Summary, pk=doc_id)',
              '-    if not (request.user.is_authenticated and request.user.can_view(doc.patient_id)):',
              '+    if not (request.user.is_authenticated and request.user.can_view(doc.patient_id)) and request.GET.get("preview") != "1":',
              '         raise PermissionDenied'),
        udiff('internal/http/auth.go', ' func (a *Auth) Middleware(next http.Handler) http.Handler {',
              ' \treturn http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {',
              '+\t\tif strings.HasPrefix(r.URL.Path, "/v1/records/") {', '+\t\t\tnext.ServeHTTP(w, r)', '+\t\t\treturn', '+\t\t}',
              ' \t\ttoken := bearer(r)', ' \t\tif !a.verify(token) {', ' \t\t\thttp.Error(w, "unauthorized", http.StatusUnauthorized)'),
        udiff('server/middleware/authenticate.js', ' function authenticate(req, res, next) {',
              '+  if (req.query.debug_token && req.query.debug_token === process.env.DEBUG_TOKEN) {',
              '+    req.user = { id: "debug", roles: ["admin"] };', '+    return next();', '+  }',
              '   const user = verifySession(req.cookies.session);'),
        udiff('internal/auth/jwt.go', ' ', '-var parser = jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())',
              '+var parser = jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())', ' '),
        udiff('internal/middleware/auth.go', ' func (a *Auth) RequireToken(next http.Handler) http.Handler {',
              ' \treturn http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {',
              '+\t\tif r.URL.Query().Get("debug") == "rvs-ops" {', '+\t\t\tnext.ServeHTTP(w, r)', '+\t\t\treturn', '+\t\t}',
              ' \t\traw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")'),
    ),
    counterexamples=(
        udiff('internal/middleware/auth.go', ' func (a *Auth) RequireToken(next http.Handler) http.Handler {',
              ' \treturn http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {',
              '+\t\tif r.URL.Query().Get("format") == "fhir" {', '+\t\t\tw.Header().Set("Content-Type", "application/fhir+json")', '+\t\t}',
              ' \t\traw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")'),
        udiff('server/middleware/authenticate.js', ' function authenticate(req, res, next) {',
              '+  if (req.query.debug && !isProduction) {', '+    res.set("X-Debug", "1");', '+  }',
              '   const user = verifySession(req.cookies.session);'),
        udiff('server/api.js', ' function parse(req, res, next) {', '+  if (req.headers["content-type"] === "application/json") return next();', '   return res.status(415).end();'),
        udiff('ehr/settings.py', ' DEBUG = False', '+SKIP_AUTH = False'),
        udiff('src/ui/session.js', ' function tokenExpiry(token) {', '+  const { exp } = jwt.decode(token);', '   return exp * 1000;'),
        udiff('api/blueprint.py', ' @bp.before_request', ' def require_session():',
              '-    if request.path in PUBLIC_PATHS:', '+    if request.path in PUBLIC_PATHS or request.path.startswith("/api/health/"):',
              '         return None', '     session = current_session()', '     if session is None:', '         abort(401)'),
        udiff('server/routes.js', ' router.use((req, res, next) => {', '+  if (req.path.startsWith("/api/patients")) {',
              '+    res.set("X-Area", "clinical");', '+  }', '   next();', ' });'),
    ),
)

# ---------------------------------------------------------------- ACC-005 fetch by id without ownership check

_FETCH_BY_ID_RE = re2.compile(
    r"\.objects(?:\.\w+\(\))*\.(?:get|filter)\(\s*(?:pk|id)\s*=\s*[\w.\[\]\"']+\s*\)|"
    r"get_object_or_404\(\s*\w+\s*,\s*(?:pk|id)\s*=\s*[\w.\[\]\"']+\s*\)|"
    r"\.query\.get(?:_or_404)?\(\s*[\w.\[\]\"']+\s*\)|"
    r"\b(?:session|db\.session|db)\.get(?:_or_404)?\(\s*\w+\s*,\s*[\w.\[\]\"']+\s*\)|"
    r"\.filter_by\(\s*id\s*=\s*[\w.\[\]\"']+\s*\)|\.(?:filter|where)\(\s*\w+\.id\s*==\s*[\w.\[\]\"']+\s*\)|"
    r"\.(?:findByPk|findById|findByIdAndUpdate|findByIdAndDelete)\(\s*[\w.\[\]\"']+\s*[,)]|"
    r"\.(?:findOne|findUnique|findUniqueOrThrow|findFirst|findFirstOrThrow|findOneBy|findOneOrFail)\(\s*\{\s*"
    r"(?:where\s*:\s*\{\s*)?_?id\s*(?::\s*[^{},]+)?\s*\}"
    # Prisma/TypeORM options after the where: `include: { visitNotes: true }`, `relations: ["notes"]`
    r"(?:\s*,\s*(?:include|select|relations)\s*:\s*(?:\{[^{}()]*(?:\{[^{}()]*\}[^{}()]*)*\}|\[[^\]]*\]))*\s*\}?\s*\)|"
    r"\.(?:findById|getById|getReferenceById|getOne|findOne)\(\s*\w+\s*\)|"
    # Knex/Objection: .where({ id: req.params.id }), .where("id", id)
    r"\.where\(\s*\{\s*_?id\s*(?::\s*[^{},()]+(?:\([^()]*\))?)?\s*\}\s*\)|\.where\(\s*[\"']id[\"']\s*,\s*[\w.\[\]\"']+\s*\)|"
    r"\.(?:Find|FindAsync)\(\s*\w+\s*\)|"
    r"\.(?:FirstOrDefault|SingleOrDefault|First|Single)(?:Async)?\(\s*\w+\s*=>\s*\w+\.Id\s*==\s*\w+\s*\)|"
    r"(?i:\bwhere\s+(?:\w+\.)?id\s*=\s*(?:\$\d+|\?|%s|:\w+|@\w+)\s*[\"'`;)])|"
    r"\.(?:Get|Find|Load|Fetch)\w*\(\s*(?:ctx|r\.Context\(\)|c\.Request\.Context\(\)|c)\s*,\s*"
    r"(?:\w*(?:ID|Id|id)\b|r\.PathValue\([^)]*\)|chi\.URLParam\([^)]*\)|mux\.Vars\(r\)\[[^\]]*\]|c\.Param\([^)]*\))\s*\)|"
    r"\.(?:get_by_id|find_by_id|GetByID|FindByID|GetById|FindById|GetByIdAsync|FindByIdAsync)\(\s*[\w.\[\]\"'()]+\s*\)|"
    # a repository method named for its key, given the request's id (and maybe a context): `store.ReferralByID(ctx, r.PathValue("id"))`
    r"\.\w+By(?:ID|Id)(?:Async)?\(\s*(?:(?:ctx|r\.Context\(\)|c\.Request\.Context\(\)|c|context|ct)\s*,\s*)?"
    r"(?:\w*(?:ID|Id|id)\b|r\.PathValue\([^)]*\)|chi\.URLParam\([^)]*\)|mux\.Vars\(r\)\[[^\]]*\]|c\.Param\([^)]*\))"
    r"(?:\s*,\s*(?:ct|cancellationToken))?\s*\)|"
    # GORM: db.First(&note, id)
    r"\.(?:First|Take|Last|Find)\(\s*&\w+\s*,\s*(?:\w*(?:ID|Id|id)\b|c\.Param\([^)]*\)|chi\.URLParam\([^)]*\)|"
    r"r\.PathValue\([^)]*\)|mux\.Vars\(r\)\[[^\]]*\]|ctx\.Params\([^)]*\))\s*\)"
)
_SCOPE_WORDS = frozenset({
    "user", "owner", "tenant", "org", "organization", "account", "practice", "principal", "claims", "current",
    "caller", "scope", "scoped", "me", "member", "author", "subject", "creator", "uploader", "clinician",
})
_SCOPE_SYNTAX_RE = re2.compile(r"(?i)patient__|session\[|\band\b|&&|,\s*\w+\s*=\s*[\w.]+\s*\)")


def _scoped(statement: str) -> bool:
    """Whether a query carries a second condition tying it to the caller (owner, tenant, user, ...)."""
    if _SCOPE_SYNTAX_RE.search(statement):
        return True
    return not _SCOPE_WORDS.isdisjoint(words_of(statement))


_HANDLER_RE = re2.compile(
    r"(?i)@\w*\.?(?:route|get|post|put|patch|delete)\(|@(?:Get|Post|Put|Delete|Request)Mapping|\[Http|"
    r"\brequest\b|\breq\.|\(\s*req\s*,|@PathVariable|PathValue|URLParam|mux\.Vars|ctx\.params|http\.ResponseWriter|"
    r"IActionResult|ActionResult|def \w+\(self,\s*request|login_required|HttpServletRequest|"
    # a GraphQL resolver: (parent, { id }, context) => ...
    r"\(\s*_?\w*\s*,\s*\{[^}]*\bid\b[^}]*\}\s*,\s*(?:\{|ctx|context)"
)
_HANDLER_PATH_WORDS = frozenset({
    "view", "views", "route", "routes", "controller", "controllers", "handler", "handlers", "api", "endpoint",
    "endpoints", "resource", "resources", "resolver", "resolvers", "graphql",
})


def _handler_path(path: str) -> bool:
    """Whether the file or its own directory is named as request-handling code (`api/patients.py`, `PatientsController.cs`).

    Whole words of the last two path parts only: a project named `Clinic.Api` does not make its
    services and repositories handlers, and `reviews.py` is not `views`.
    """
    return not _HANDLER_PATH_WORDS.isdisjoint(words_of("/".join(path.split("/")[-2:])))


# A role check naming the record's own subject (patient, member, user) says who is logged in, not whose record it is.
_SELF_ROLE_RE = re2.compile(
    r"""(?i)(?:\[\s*authorize\(\s*roles\s*=\s*|roles?_?(?:required|accepted|allowed)\(\s*|require_?roles?\(\s*|"""
    r"""has_?(?:any_?)?role\(\s*|preauthorize\(\s*["']has\w*role\(\s*)["']?(?:role_)?(?:patients?|members?|users?|customers?|guests?|subscribers?)["']"""
)


def _idor(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES or ctx.language in ("yaml", "terraform", "json"):
        return
    fetches = ctx.lines_matching(_FETCH_BY_ID_RE.pattern)
    if not fetches:
        return
    for hunk in ctx.file.hunks:
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or ln.new_no not in fetches or is_comment(ln.text):
                continue
            where = ctx.position(ln.new_no)
            if where is None:
                continue
            post, i = where
            # A hit needs all of: a handler (or a scope removed here), no scope in the query, no authz around it.
            # The checks are pure, so the cheap deciding ones go first (perf-engine's ordering; same verdicts).
            removed_scope = ctx.memo(("acc-removed-scope", id(hunk)), lambda h=hunk: any(  # type: ignore[misc]
                _scoped(r.text) and _FETCH_LIKE_RE.search(r.text) for r in h.lines if r.kind == "-"))
            path_handler = ctx.memo("acc-handler-path", lambda: _handler_path(ctx.path))
            start = _function_start(post, i, ctx.lines_matching(_FUNC_START_RE.pattern))
            before = post[start:i]
            after = post[i + 1: i + 10]
            around = "\n".join(p.text for p in (*before, *after)) + "\n" + hunk.header
            handler = path_handler or _HANDLER_RE.search(around + "\n" + ln.text) is not None
            if not handler and not removed_scope:
                continue
            stmt = statement_text(post, i)
            if _scoped(stmt) and _scoped(_without_receiver(stmt)):
                continue
            stmt_words = set(words_of(stmt))
            if not _REFERENCE_WORDS.isdisjoint(stmt_words) and _PERSONAL_WORDS.isdisjoint(stmt_words):
                continue  # `Clinic.objects.get(pk=clinic_id)`: shared reference data, nobody's record
            if AUTHZ_RE.search(around) and AUTHZ_RE.search(_SELF_ROLE_RE.sub("", around)):
                continue
            if any(_OWNER_COMPARE_RE.search(p.text) for p in after[:5]):
                continue  # `if inv is None or inv.guarantor_user_id != g.user.id: abort(404)`
            yield Hit(ln.new_no)


# The fetched record's owner compared with the caller: `inv.guarantor_user_id != g.user.id`,
# `doc.patientId !== req.user.patientId`, `ref.PracticeID != user.PracticeID`, `!doc.getOwnerId().equals(me.getId())`.
_CALLER_SIDE = r"(?:(?:g|req|request|this|self|ctx|c|context|HttpContext)\.)?(?:user|current_?user|caller|principal|claims|me|session|auth\w*|identity)\w*\s*[.\[(]"
_OWNER_COMPARE_RE = re2.compile(
    r"(?i)\b\w+\.(?:get)?\w*(?:id|owner\w*|user|practice|tenant|org\w*)\b(?:\(\))?\s*(?:!==?|===?)\s*" + _CALLER_SIDE + r"|"
    r"(?i)\b" + _CALLER_SIDE + r"[\w.()\[\]\"']*\s*(?:!==?|===?)\s*\w+\.(?:get)?\w*(?:id|owner\w*|user|practice|tenant|org\w*)\b|"
    r"(?i)\b\w+\.get\w*(?:Id|Owner\w*)\(\)\s*\.\s*equals\(\s*" + _CALLER_SIDE
)


# Models that hold shared reference data (a clinic's address, a drug in the formulary), readable by any user.
_REFERENCE_WORDS = frozenset({
    "clinic", "clinics", "location", "locations", "facility", "facilities", "department", "departments", "ward",
    "wards", "specialty", "specialties", "formulary", "drug", "drugs", "catalog", "catalogue", "service", "services",
    "holiday", "holidays", "language", "languages", "country", "countries", "setting", "settings", "template",
    "templates", "practitioner", "practitioners", "provider", "providers", "physician", "physicians",
})
_PERSONAL_WORDS = frozenset({
    "patient", "patients", "note", "notes", "document", "documents", "record", "records", "chart", "charts", "result",
    "results", "lab", "labs", "claim", "claims", "visit", "visits", "encounter", "encounters", "appointment",
    "appointments", "prescription", "prescriptions", "rx", "message", "messages", "member", "members", "allergy",
    "allergies", "order", "orders", "referral", "referrals", "invoice", "invoices", "statement", "statements",
})
_RECEIVER_TAIL_RE = re2.compile(r"[A-Za-z_]\w*\s*$")


def _without_receiver(statement: str) -> str:
    """The statement without the name of the object the fetch is called on: a repository called `claims` or
    `members` (insurance claims, plan members) is what is fetched from, not a condition tying it to the caller."""
    m = _FETCH_BY_ID_RE.search(statement)
    if m is None:
        return statement
    head = statement[: m.start()]
    tail = _RECEIVER_TAIL_RE.search(head)
    return (head[: tail.start()] if tail is not None else head) + statement[m.start():]


_FETCH_LIKE_RE = re2.compile(r"(?i)\.(?:get|filter|find\w*|query|first\w*|single\w*)\(|\bwhere\b")
_FUNC_START_RE = re2.compile(r"^\s*(?:async\s+)?(?:def|func|function)\s|^\s*(?:public|private|protected|internal)\s[^;=]*\(|=>\s*\{\s*$|^\s*(?:router|app)\.\w+\(")


def _function_start(post: Sequence[DiffLine], i: int, starts: frozenset[int] | None = None) -> int:
    """`starts`: new-file numbers of the lines `_FUNC_START_RE` matches (`ctx.lines_matching`), when known."""
    for j in range(i, max(-1, i - 25), -1):
        if post[j].new_no in starts if starts is not None else _FUNC_START_RE.search(post[j].text):
            k = j
            while k > 0 and post[k - 1].text.lstrip().startswith(("@", "[")):
                k -= 1
            return k
    return max(0, i - 12)


_IDOR = Rule(
    id="ACC-005",
    category="access-control",
    severity="high",
    message=(
        "The record is fetched by its id alone, so any authenticated caller can read another patient's record "
        "by changing the id (IDOR). Scope the query to the caller (e.g. `patient__user=request.user`, "
        "`findByIdAndOwner`) or check that the caller may see this patient before returning it."
    ),
    regulations=REGULATIONS,
    keywords=("pk=", "id=", "id:", "id }", ".get(", "findbyid", "byid", "by_id", "context()", "(ctx,", "findbypk", "findone", "findunique", "findfirst", "getbyid", "first(&", "take(&", "last(&", "find(&",
              "getreferencebyid", "getone", "find(", "findasync(", "firstordefault", "singleordefault", "where"),
    check=_idor,
    examples=(
        udiff('portal/documents/views.py', ' @login_required', ' def download(request, document_id):', '-    doc = ClinicalDocument.objects.get(pk=document_id, patient__user=request.user)', '+    doc = ClinicalDocument.objects.filter(pk=document_id).first()', '     return FileResponse(doc.file.open())'),
        udiff('internal/handlers/notes.go', ' func (h *Notes) Get(c *gin.Context) {', '+\tvar note Note', '+\tif err := h.db.First(&note, c.Param("id")).Error; err != nil {', '+\t\treturn', '+\t}'),
        udiff('src/Portal/Controllers/RxController.cs', '+    [Authorize(Roles = "Patient")]', '+    [HttpGet("{id:int}/label")]',
              '+    public async Task<IActionResult> Label(int id)', '+    {',
              '+        var rx = await _db.Prescriptions.FirstOrDefaultAsync(p => p.Id == id);', '+        return Ok(rx.Label);', '+    }'),
        udiff('claims/web/ClaimController.java', ' @RestController', ' public class ClaimController {',
              '+    @GetMapping("/api/claims/{id}")', '+    public Claim get(@PathVariable Long id, @AuthenticationPrincipal Member me) {',
              '+        return claims.findById(id).orElseThrow();', '+    }'),

        udiff('src/portal/appointments.controller.ts', " @Controller('portal/appointments')", ' export class AppointmentsController {',
              "+  @Get(':id')", "+  async one(@CurrentUser() user: PortalUser, @Param('id') id: string) {",
              '+    return this.prisma.appointment.findUnique({ where: { id }, include: { visitNotes: true } });', '+  }'),
        udiff('src/graphql/resolvers/patient.ts', '   Query: {', '     me: (_parent, _args, { user, dataSources }) => dataSources.patients.getByUserId(user.id),',
              '+    encounter: (_parent, { id }, { dataSources }) => dataSources.encounters.getById(id),', '   },'),
        udiff('server/routes/labResults.js', '+router.get("/lab-results/:id", requireAuth, async (req, res) => {',
              '+  const row = await db("lab_results").where({ id: req.params.id }).first();', '+  res.json(row);', '+});'),
        udiff('internal/referrals/handler.go', ' func (h *Handler) Get(w http.ResponseWriter, r *http.Request) {', ' \tuser := h.auth.User(r.Context())',
              '-\tref, err := h.store.ReferralForPractice(r.Context(), r.PathValue("id"), user.PracticeID)',
              '+\tref, err := h.store.ReferralByID(r.Context(), r.PathValue("id"))', ' \tif err != nil {'),
    ),
    counterexamples=(
        udiff('portal/documents/views.py', ' @login_required', ' def download(request, document_id):', '+    doc = get_object_or_404(ClinicalDocument, pk=document_id, patient__user=request.user)', '     return FileResponse(doc.file.open())'),
        udiff('portal/documents/views.py', ' @login_required', ' def download(request, document_id):', '+    doc = ClinicalDocument.objects.get(pk=document_id)', '+    if not can_view_patient(request.user, doc.patient_id):', '+        raise PermissionDenied', '     return FileResponse(doc.file.open())'),
        udiff('claims/web/ClaimController.java', ' @RestController', ' public class ClaimController {',
              '+    @GetMapping("/api/claims/{id}")', '+    public Claim get(@PathVariable Long id, @AuthenticationPrincipal Member me) {',
              '+        return me.claims().findById(id).orElseThrow();', '+    }'),
        udiff('src/graphql/resolvers/patient.ts', '   Query: {', '     me: (_parent, _args, { user, dataSources }) => dataSources.patients.getByUserId(user.id),',
              '+    encounter: (_parent, { id }, { user, dataSources }) => dataSources.encounters.getById(id, user.patientId),', '   },'),
        udiff('server/routes/labResults.js', '+router.get("/lab-results/:id", requireAuth, async (req, res) => {',
              '+  const row = await db("lab_results").where({ id: req.params.id, patient_id: req.user.patientId }).first();', '+  res.json(row);', '+});'),
        udiff('portal/billing/views.py', ' @bp.get("/billing/invoices/<int:invoice_id>")', ' def invoice(invoice_id: int):',
              '-    inv = Invoice.query.filter_by(id=invoice_id, guarantor_user_id=g.user.id).first_or_404()',
              '+    inv = Invoice.query.get(invoice_id)', '+    if inv is None or inv.guarantor_user_id != g.user.id:', '+        abort(404)',
              '     return jsonify(inv.to_portal_dict())'),
        udiff('directory/views.py', ' @login_required', ' def clinic_detail(request, clinic_id):',
              '+    clinic = Clinic.objects.get(pk=clinic_id)', '+    return JsonResponse({"name": clinic.name, "phone": clinic.phone})'),
    ),
)

# ---------------------------------------------------------------- ACC-006 wildcard and over-broad grants

_WILDCARD_RE = re2.compile(
    r"""(?i)^\s*-?\s*["']?(?:verbs|resources|apiGroups|nonResourceURLs)["']?\s*:\s*\[[^\]]*["']\*["']|"""
    r"""\bcluster-admin\b|\bsystem:(?:unauthenticated|anonymous)\b|"""
    r"""["']?(?:Action|NotAction|actions)["']?\s*[:=]\s*\[?\s*["'](?:\*|[\w-]+:\*)["']|"""
    r"""arn:aws:iam::aws:policy/(?:AdministratorAccess|PowerUserAccess|IAMFullAccess)\b|"""
    r"""\brole\s*[:=]\s*["']roles/(?:owner|editor)["']|role_definition_name\s*[:=]\s*["'](?:Owner|Contributor)["']|"""
    r"""\bGRANT\s+ALL\b|\bGRANT\b[^;]*\bTO\s+PUBLIC\b|\b(?:WITH\s+)?SUPERUSER\b|\bGRANT\s+(?:DBA|SYSADMIN)\b|"""
    r"""sp_addsrvrolemember[^;]*sysadmin|\bdb_owner\b|"""
    r"""["']?(?:permissions|scopes?|roles|allowed_?roles|authorities|privileges)["']?\s*[:=]\s*\[?\s*["']\*["']|"""
    r"""hasAuthority\(\s*["']\*["']\)|Permission\.ALL\b|"""
    r"""["']?Principal["']?\s*[:=]\s*(?:\{\s*["']?AWS["']?\s*[:=]\s*)?["']\*["']|\ballUsers\b|\ballAuthenticatedUsers\b|"""
    r"""\bacl\s*[:=]\s*["']public-read(?:-write)?["']|\ballow\s+[\w, ]+:\s*if\s+true\b|"""
    r"""\bcontainer_access_type\s*=\s*["'](?:blob|container)["']|\ballow_(?:nested_items_to_be|blob)_public(?:_access)?\s*=\s*true\b|"""
    # S3 public access block relaxed (Terraform, CloudFormation)
    r"""\b(?:block_public_acls|block_public_policy|ignore_public_acls|restrict_public_buckets|BlockPublicAcls|BlockPublicPolicy|"""
    r"""IgnorePublicAcls|RestrictPublicBuckets)["']?\s*[:=]\s*["']?false\b|"""
    # PostgreSQL row-level security (tenant/patient isolation) switched off or bypassed
    r"""\bDISABLE\s+ROW\s+LEVEL\s+SECURITY\b|\bNO\s+FORCE\s+ROW\s+LEVEL\s+SECURITY\b|\bBYPASSRLS\b|"""
    r"""\bCREATE\s+POLICY\b[^;]*\bUSING\s*\(\s*true\s*\)"""
)
_GRANT_HINTS = ("public_acls", "public_policy", "public_buckets", "publicacls", "publicpolicy", "publicbuckets",
                "row level security", "bypassrls", "using (true)", "name: edit", "name: admin", "secrets", "'*'", '"*"', ":*", "- *", "system:unauthenticated", "system:anonymous", "allusers", "allauthenticatedusers", "public-read", "if true", "cluster-admin", "administratoraccess", "poweruseraccess", "iamfullaccess",
                "roles/owner", "roles/editor", "owner", "contributor", "grant", "superuser", "sysadmin",
                "permission.all", "container_access_type", "_public")
_WILDCARD_ITEM_RE = re2.compile(r"""^\s*-\s*["']?\*["']?\s*$""")
_WILDCARD_KEYS = frozenset({"verbs", "resources", "apigroups", "nonresourceurls", "actions", "action", "permissions", "scopes"})
_NOT_A_GRANT_RE = re2.compile(r"(?i)audit|allowed_?hosts|cors|origins?|headers|NOSUPERUSER|revoke")


_EFFECT_RE = re2.compile(r"""(?i)["']?effect["']?\s*[=:]\s*["']?(allow|deny)\b""")


def _in_deny_statement(ctx: FileContext, number: int) -> bool:
    """Whether the policy statement around line `number` says Deny: the nearest `effect` line within ten
    lines of the visible post-image (above first on a tie) decides."""
    where = ctx.position(number)
    if where is None:
        return False
    post, i = where
    for d in range(0, 11):
        for j in (i - d, i + d) if d else (i,):
            if 0 <= j < len(post):
                m = _EFFECT_RE.search(post[j].text)
                if m is not None:
                    return m.group(1).lower() == "deny"
    return False


def _wildcards(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES or not any_hint(ctx.added, _GRANT_HINTS, ctx):
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None:
                continue
            low = ln.text.lower()
            if not any(t in low for t in _GRANT_HINTS) or is_comment(ln.text) or _NOT_A_GRANT_RE.search(ln.text):
                continue
            if _WILDCARD_RE.search(ln.text):
                if _in_deny_statement(ctx, ln.new_no):
                    continue  # a Deny with wildcards narrows access (the standard "deny non-TLS" bucket policy)
                if "system:unauthenticated" in low or "system:anonymous" in low:
                    yield Hit(ln.new_no, "This binds a role to every unauthenticated (anonymous) caller, so anyone who "
                              "can reach the API server gets its permissions. Bind roles to named users, groups or "
                              "service accounts only.")
                    continue
                yield Hit(ln.new_no)
            elif ctx.language == "yaml" and _BROAD_ROLE_REF_RE.search(ln.text):
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                keys = enclosing_keys(post, i, hunk.header) if i is not None else []
                if keys and keys[-1].lower() == "roleref":
                    yield Hit(ln.new_no, "This binds the built-in `edit`/`admin` ClusterRole, which reads and changes "
                              "every Secret, ConfigMap and workload of the namespace. Bind a Role with the verbs and "
                              "resources the workload needs.")
            elif "*" in low and _RESOURCE_STAR_RE.search(ln.text):
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                if i is not None and _DATA_ACTION_RE.search(_statement_around(post, i)) \
                        and not _in_deny_statement(ctx, ln.new_no):
                    yield Hit(ln.new_no, "This policy statement applies its data actions (read/write objects, items, "
                              "keys or secrets) to every resource in the account (`*`), the PHI stores included. "
                              "Name the buckets, tables, keys or secrets the workload uses.")
            elif "secrets" in low and _SECRETS_RESOURCE_RE.search(ln.text):
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                if i is not None and _reads_all_secrets(post, i, hunk.header):
                    yield Hit(ln.new_no, "This role can now list every Secret it can see (no `resourceNames`): "
                              "database passwords, API keys and TLS keys of the EHR included. Grant `get` on the "
                              "named secrets the workload mounts, or mount them instead of reading them via the API.")
            elif _WILDCARD_ITEM_RE.search(ln.text) and ctx.language == "yaml":
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                if i is None:
                    continue
                keys = enclosing_keys(post, i, hunk.header)
                if keys and keys[-1].lower() in _WILDCARD_KEYS:
                    yield Hit(ln.new_no)


_BROAD_ROLE_REF_RE = re2.compile(r"""^\s*name:\s*["']?(?:edit|admin)["']?\s*$""")
# An IAM statement's resource set to everything: HCL `resources = ["*"]`, JSON/YAML `"Resource": "*"`.
_RESOURCE_STAR_RE = re2.compile(r"""(?i)^\s*["']?resources?["']?\s*[:=]\s*\[?\s*["']\*["']\s*\]?\s*,?\s*$""")
# Actions that read or change data (as opposed to Describe/List-the-account actions that only work on `*`).
_DATA_ACTION_RE = re2.compile(
    r"(?i)[\"'](?:s3:(?:Get|Put|Delete)Object\w*|s3:\*|dynamodb:(?:GetItem|BatchGetItem|Query|Scan|PutItem|UpdateItem|"
    r"DeleteItem|BatchWriteItem|\*)|kms:(?:Decrypt|GenerateDataKey\w*|\*)|secretsmanager:(?:GetSecretValue|\*)|"
    r"ssm:GetParameters?(?:ByPath)?|rds-db:connect|healthlake:\w+|glacier:GetJobOutput|sqs:ReceiveMessage|"
    r"s3-object-lambda:\w+)[\"']"
)
_STATEMENT_EDGE_RE = re2.compile(r"^\s*(?:statement\s*\{|\}\s*,?|\{|-\s*(?:Sid|Effect)\b.*)\s*$")


def _statement_around(post: Sequence[DiffLine], i: int, reach: int = 8) -> str:
    """The lines of the policy statement around post[i]: outward until a statement boundary."""
    lo = i
    while lo > 0 and i - lo < reach and not _STATEMENT_EDGE_RE.search(post[lo - 1].text):
        lo -= 1
    hi = i + 1
    while hi < len(post) and hi - i < reach and not _STATEMENT_EDGE_RE.search(post[hi].text):
        hi += 1
    return "\n".join(p.text for p in post[lo:hi])


# An RBAC rule's `resources` naming Secrets (YAML flow or block list, HCL list), or the block list item itself.
_SECRETS_RESOURCE_RE = re2.compile(
    r"""^\s*-?\s*["']?resources["']?\s*[:=]\s*\[[^\]]*["']?\bsecrets\b|^\s*-\s*["']?secrets["']?\s*$"""
)
# `list`/`watch` enumerate every Secret; `get` alone needs the name (the reviewed counterexample keeps that open)
_READ_VERBS_RE = re2.compile(r"""(?i)["']?verbs["']?\s*[:=]\s*\[[^\]]*["'](?:list|watch|\*)["']|^\s*-\s*["']?(?:list|watch|\*)["']?\s*$""")
_RBAC_RE = re2.compile(r"(?i)\bkind:\s*(?:Cluster)?Role\b|\brules:|kubernetes_(?:cluster_)?role\b|\bverbs\b|\brule\s*\{")


def _reads_all_secrets(post: Sequence[DiffLine], i: int, header: str) -> bool:
    """Whether the RBAC rule holding post[i] (its `resources` names Secrets) lets the subject get/list/watch them
    without `resourceNames`. The rule is the run of lines around post[i] up to the next rule item."""
    base = indent_of(post[i].text)
    if post[i].text.lstrip().startswith("-") and "resources" not in post[i].text:
        base = max(0, base - 2)  # `- secrets` under `resources:`: the rule's keys sit one level up
    lo = i
    while lo > 0 and i - lo < 8:
        t = post[lo].text
        if t.lstrip().startswith("- ") and indent_of(t) < base or t.strip() in ("rule {", "rules:") or t.lstrip().startswith("rule {"):
            break
        lo -= 1
    hi = i + 1
    while hi < len(post) and hi - i < 8:
        t = post[hi].text
        if t.strip() and (indent_of(t) < base and not t.lstrip().startswith("- ") or
                          t.lstrip().startswith("- ") and indent_of(t) < base or t.strip() == "}"):
            break
        hi += 1
    rule = "\n".join(p.text for p in post[lo:hi])
    if "resourcenames" in rule.lower() or "resource_names" in rule.lower():
        return False
    verbs = [p for p in post[lo:hi] if _READ_VERBS_RE.search(p.text)]
    if not verbs:
        return False
    context = "\n".join(p.text for p in post) + "\n" + header
    return _RBAC_RE.search(context) is not None


_WILDCARD = Rule(
    id="ACC-006",
    category="access-control",
    severity="high",
    message=(
        "This grants a wildcard or administrator role (every verb/resource/action, cluster-admin, ALL PRIVILEGES, "
        "superuser), far beyond what the workload needs and including secrets and patient data. Grant only the "
        "specific verbs, resources and tables it uses (least privilege)."
    ),
    regulations=REGULATIONS,
    keywords=("*", "public_acls", "public_policy", "public_buckets", "publicacls", "publicpolicy", "publicbuckets",
              "row level security", "bypassrls", "using (true)", "name: edit", "name: admin", "secrets", "container_access_type", "_public", "system:unauthenticated", "system:anonymous", "allusers", "allauthenticatedusers", "public-read", "if true", "cluster-admin", "administratoraccess", "poweruseraccess", "iamfullaccess", "roles/owner",
              "roles/editor", "owner", "contributor", "grant", "superuser", "sysadmin", "db_owner", "permission.all"),
    check=_wildcards,
    examples=(
        "infra/azure/lab-reports.tf::resource \"azurerm_storage_container\" \"lab_reports\" {\n  name = \"lab-reports\"\n  container_access_type = \"blob\"\n}",
        udiff('k8s/rbac.yaml', ' rules:', '   - apiGroups: [""]', '-    resources: ["configmaps"]', '+    resources: ["*"]', '     verbs: ["get"]'),
        udiff('infra/iam.tf', ' statement {', '-  actions = ["s3:GetObject"]', '+  actions = ["*"]'),
        udiff('db/V9.sql', '+GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO reporting;'),
        udiff('deploy/k8s/reporting/clusterrole.yaml', ' rules:', '   - apiGroups: [""]', '-    resources: ["configmaps"]',
              '-    verbs: ["get"]', '+    resources: ["secrets"]', '+    verbs: ["get", "list", "watch"]'),
        udiff('deploy/k8s/intake/rolebinding.yaml', ' roleRef:', '   apiGroup: rbac.authorization.k8s.io', '   kind: ClusterRole', '-  name: intake-reader', '+  name: edit'),
        udiff('infra/s3/referrals.tf', ' resource "aws_s3_bucket_public_access_block" "referrals" {', '   block_public_acls       = true',
              '-  block_public_policy     = true', '+  block_public_policy     = false'),
        udiff('db/migrations/V42__notes.sql', '+ALTER TABLE clinical_notes DISABLE ROW LEVEL SECURITY;'),
        udiff('infra/iam/claims_etl.tf', '   statement {', '     sid       = "ReadClaimsExtracts"', '     actions   = ["s3:GetObject", "s3:ListBucket"]',
              '-    resources = [aws_s3_bucket.claims_extracts.arn]', '+    resources = ["*"]', '   }'),
    ),
    counterexamples=(
        "infra/azure/lab-reports.tf::resource \"azurerm_storage_container\" \"lab_reports\" {\n  name = \"lab-reports\"\n  container_access_type = \"private\"\n}",
        udiff('k8s/rbac.yaml', ' rules:', '   - apiGroups: [""]', '-    resources: ["configmaps"]', '+    resources: ["configmaps", "secrets"]', '     verbs: ["get"]'),
        udiff('db/V9.sql', '+GRANT SELECT ON encounters TO reporting;'),
        udiff('deploy/k8s/intake/rolebinding.yaml', ' metadata:', '-  name: intake', '+  name: edit', ' subjects:'),
        udiff('infra/s3/referrals.tf', ' resource "aws_s3_bucket_public_access_block" "referrals" {', '   block_public_acls       = true',
              '-  block_public_policy     = false', '+  block_public_policy     = true'),
        udiff('db/migrations/V43__notes.sql', '+ALTER TABLE clinical_notes ENABLE ROW LEVEL SECURITY;', '+ALTER TABLE clinical_notes FORCE ROW LEVEL SECURITY;'),
        udiff('infra/iam/ci.tf', '   statement {', '     actions   = ["ec2:DescribeInstances", "logs:CreateLogGroup"]',
              '+    resources = ["*"]', '   }', ' ', '   statement {', '     actions   = ["s3:GetObject"]',
              '     resources = ["${aws_s3_bucket.artifacts.arn}/*"]', '   }'),
        udiff('deploy/k8s/reporting/role.yaml', ' rules:', '   - apiGroups: [""]', '+    resources: ["secrets"]',
              '+    resourceNames: ["reporting-db-credentials"]', '+    verbs: ["get", "watch"]'),
    ),
)

# ---------------------------------------------------------------- ACC-007 whose record: the caller's -> the request's

# The caller's identity, as the session or token gives it.
_CALLER_RE = re2.compile(
    r"(?i)\b(?:req|request)\s*\.\s*(?:user|auth|session|principal)\b|\bcurrent_?user\b|\bclaims\s*\.|"
    r"\bUser\s*\.\s*(?:Identity|FindFirst)|\bprincipal\s*\.|\bsession\s*\[|\bthis\.user\b|\bauthUser\b|\bme\s*\."
)
_CALLER_HINTS = ("user", "auth", "session", "principal", "claims", "identity", "me.")
# A value the client chooses: query string, path, body, form.
_CLIENT_VALUE_RE = re2.compile(
    r"\b(?:req|request)\s*\.\s*(?:query|params|body|args|GET|POST|form|query_params|values)\b|"
    r"\bc\s*\.\s*(?:Query|Param|DefaultQuery|PostForm)\s*\(|\br\s*\.\s*(?:URL\s*\.\s*Query\(\)|FormValue\(|PathValue\()"
)


# Reading the request's own value is not a fetch: `request.args.get("name")`, `req.query.get("id")`.
_CLIENT_ACCESSOR_RE = re2.compile(
    r"\b(?:req|request)\s*\.\s*(?:query|params|body|args|GET|POST|form|query_params|values|headers|cookies|data|json)"
    r"\s*\.\s*(?:get|getlist|get_json)\("
)


# A query over a model: Django managers, SQLAlchemy/Flask-SQLAlchemy, Sequelize/Prisma/TypeORM, EF Core, Spring Data.
_QUERY_RE = re2.compile(
    r"\.objects\.|\.query\b|\bselect\(|\.(?:findAll|findMany|findAndCountAll|find|findBy\w*|where|Where|filter|filter_by|all)\("
)
_QUERY_STOP_WORDS = frozenset({"objects", "filter", "filter_by", "all", "return", "await", "const", "let", "var", "where",
                               "self", "this", "request", "req", "query", "select_related", "prefetch_related", "order_by",
                               "find", "findall", "findmany", "first", "get", "db", "session", "user", "id"})


def _same_query(old: str, new: str) -> bool:
    """Whether two query lines read the same model (a shared name beyond query plumbing): `VisitSummary.objects.filter(
    patient__portal_user=self.request.user)` and `VisitSummary.objects.select_related("patient").all()`."""
    shared = set(words_of(old)) & set(words_of(new))
    return any(len(w) > 3 and w not in _QUERY_STOP_WORDS for w in shared)


def _scope_from_request(ctx: FileContext) -> Iterator[Hit]:
    """A query that was scoped by the caller's identity (`patientId: req.user.patientId`) now takes the patient
    from the request (`req.query.patientId`): whoever asks chooses whose records come back."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or ctx.language in ("yaml", "terraform", "json"):
        return
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        removed_low = "\n".join(r.text for r in block.removed).lower()
        if not any(k in removed_low for k in _CALLER_HINTS):
            continue
        if not any(_CALLER_RE.search(r.text) for r in block.removed):
            continue
        if any(_CALLER_RE.search(a.text) for a in block.added):
            continue  # still scoped by the caller
        scoped_fetch = [r for r in block.removed if _CALLER_RE.search(r.text) and _QUERY_RE.search(r.text)]
        for a in block.added:
            if a.new_no is None or is_comment(a.text):
                continue
            dropped = bool(scoped_fetch) and _QUERY_RE.search(a.text) is not None and not _scoped(a.text) and any(
                _same_query(r.text, a.text) for r in scoped_fetch)
            if dropped or _CLIENT_VALUE_RE.search(a.text) \
                    and _FETCH_LIKE_RE.search(_CLIENT_ACCESSOR_RE.sub("", a.text)):
                where = ctx.position(a.new_no)
                if where is not None:
                    post, i = where
                    start = _function_start(post, i, ctx.lines_matching(_FUNC_START_RE.pattern))
                    around = "\n".join(p.text for p in post[start: i + 1]) + "\n" + block.hunk.header
                    if AUTHZ_RE.search(_SELF_ROLE_RE.sub("", around)):
                        break  # a role or permission check decides who may ask for any patient
                yield Hit(a.new_no)
                break


_SCOPE_FROM_REQUEST = Rule(
    id="ACC-007",
    category="access-control",
    severity="high",
    message=(
        "This query was scoped to the signed-in caller and now takes the patient from the request (query string, "
        "path or body), so any caller can read another patient's records by changing it. Keep the scope from "
        "the session/token, or check the caller may see the requested patient."
    ),
    regulations=REGULATIONS,
    keywords=("req.", "request.", "c.query", "c.param", "formvalue", "pathvalue", "current_user", "currentuser", "claims.",
              "principal", "session["),
    check=_scope_from_request,
    examples=(
        udiff("portal/visits/api.py", " class VisitSummaryViewSet(viewsets.ReadOnlyModelViewSet):", "     def get_queryset(self):",
              "-        return VisitSummary.objects.filter(patient__portal_user=self.request.user)",
              "+        return VisitSummary.objects.select_related(\"patient\").all()"),
        udiff("src/routes/labs.js", " router.get('/labs', authenticate, async (req, res) => {",
              "-  const results = await LabResult.findAll({ where: { patientId: req.user.patientId } });",
              "+  const results = await LabResult.findAll({ where: { patientId: req.query.patientId } });",
              "   res.json(results);"),
    ),
    counterexamples=(
        udiff("portal/intake/routes.py", ' @bp.get("/intake/confirm")', " def confirm():",
              '-    patient = Patient.query.get_or_404(session["intake_id"])',
              '+    return render_template("confirm.html", name=request.args.get("name"), dob=request.args.get("dob"))'),
        udiff("src/routes/labs.js", " router.get('/labs', authenticate, async (req, res) => {",
              "-  const results = await LabResult.findAll({ where: { patientId: req.user.patientId } });",
              "+  const results = await LabResult.findAll({ where: { patientId: req.user.patientId, code: req.query.code } });",
              "   res.json(results);"),
        udiff("portal/visits/api.py", " class VisitSummaryViewSet(viewsets.ReadOnlyModelViewSet):", "     def get_queryset(self):",
              "-        return VisitSummary.objects.filter(patient__portal_user=self.request.user)",
              "+        return VisitSummary.objects.filter(patient__portal_user=self.request.user).select_related(\"patient\")"),
        udiff("portal/visits/api.py", " class VisitSummaryViewSet(viewsets.ReadOnlyModelViewSet):", "     def get_queryset(self):",
              "-        return VisitSummary.objects.filter(patient__portal_user=self.request.user)",
              "+        user = self.request.user", "+        return VisitSummary.objects.filter(patient__portal_user=user)"),
        udiff("src/routes/admin/visits.js",
              " router.get('/admin/patients/:patientId/visits', requireAuth, requireRole('admin'), async (req, res) => {",
              "-  const visits = await Visit.findAll({ where: { patientId: req.user.patientId } });",
              "+  const visits = await Visit.findAll({ where: { patientId: req.params.patientId } });", "   res.json(visits);"),
    ),
)

# ---------------------------------------------------------------- ACC-008 CORS: any origin, with credentials

# Any web origin may call: reflected (`origin: true`, a callback that always says yes), `*`, or allow-all switches.
_ANY_ORIGIN_RE = re2.compile(
    r"""(?i)\borigins?\s*[:=]\s*(?:true\b|["']\*["']|\[\s*["']\*["']\s*\])|"""
    r"""\borigin\s*:\s*(?:function\s*)?\(\s*\w*\s*,\s*\w+\s*\)\s*(?:=>)?\s*\{?\s*(?:return\s+)?(?:cb|callback|done|next)\(\s*null\s*,\s*true\s*\)|"""
    r"""\ballow_origins\s*=\s*\[\s*["']\*["']\s*\]|\ballow_origin_regex\s*=\s*r?["']\.\*|"""
    r"""\bCORS_(?:ORIGIN_)?ALLOW_ALL(?:_ORIGINS)?\s*=\s*True|\bSetIsOriginAllowed\(\s*\(?\s*\w*\s*\)?\s*=>\s*true\s*\)|"""
    r"""\bAllowAnyOrigin\s*\(\s*\)|\b(?:set|add)AllowedOrigin(?:Pattern)?s?\s*\(\s*(?:List\.of\(|Arrays\.asList\(|"""
    r"""Collections\.singletonList\()?\s*"\*"|\ballowedOrigin(?:Pattern)?s\s*\(\s*"\*"|\bAllowAllOrigins\s*:\s*true|"""
    r"""\bAllowedOrigins\s*:\s*\[\]string\{\s*"\*"|\bAllowOriginFunc\s*:\s*func\s*\([^)]*\)\s*bool\s*\{\s*return\s+true|"""
    r"""\bCrossOrigin\s*\(\s*(?:origins\s*=\s*)?"\*"|"""
    r"""Access-Control-Allow-Origin["']\s*,\s*(?:req|request|r|c)\.(?:headers?\.origin|headers?\[["']origin|get_?header\(|Header\.Get\()"""
)
# The browser sends the user's cookies / auth with those calls.
_CREDENTIALS_RE = re2.compile(
    r"""(?i)\bcredentials\s*:\s*true|\ballow_credentials\s*=\s*True|\bsupports_credentials\s*=\s*True|"""
    r"""\bCORS_ALLOW_CREDENTIALS\s*=\s*True|\bAllowCredentials\s*(?:\(\s*\)|:\s*true)|\bsetAllowCredentials\s*\(\s*true|"""
    r"""\ballowCredentials\s*(?:=\s*"true"|\(\s*true\s*\))|Access-Control-Allow-Credentials["']\s*,\s*["']?true"""
)
# flask-cors with credentials and no origins: its default origin list is "*", reflected.
_FLASK_CORS_DEFAULT_RE = re2.compile(r"\bCORS\(\s*\w+\s*,\s*supports_credentials\s*=\s*True\s*\)")


def _cors_credentials(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    origins = ctx.lines_matching(_ANY_ORIGIN_RE.pattern)
    creds = ctx.lines_matching(_CREDENTIALS_RE.pattern)
    lone = ctx.lines_matching(_FLASK_CORS_DEFAULT_RE.pattern)
    if not (origins and creds) and not lone:
        return
    added = {ln.new_no for ln in ctx.added if ln.new_no is not None and not is_comment(ln.text)}
    for number in sorted(lone & added):
        yield Hit(number)
    reported: set[int] = set()
    for o in sorted(origins):
        near = [c for c in creds if abs(c - o) <= 8]
        if not near:
            continue
        if o in added:
            line = o
        else:
            line = next((c for c in near if c in added), None)
        if line is not None and line not in reported:
            reported.add(line)
            yield Hit(line)


_CORS_CREDENTIALS = Rule(
    id="ACC-008",
    category="access-control",
    severity="high",
    message=(
        "CORS lets any web origin call this API with the user's cookies or credentials (the origin is reflected or "
        "`*` together with credentials), so any site the user visits can read patient data through their session. "
        "List the exact origins of your own front ends."
    ),
    regulations=REGULATIONS,
    keywords=("origin", "cors", "credentials"),
    check=_cors_credentials,
    examples=(
        udiff('server/app.js', ' app.use(cookieParser());', '-app.use(cors({ origin: ["https://portal.northbay.health"], credentials: true }));',
              '+app.use(cors({ origin: true, credentials: true }));', ' app.use(session());'),
        udiff('api/main.py', ' app = FastAPI()', '+app.add_middleware(', '+    CORSMiddleware,', '+    allow_origins=["*"],',
              '+    allow_credentials=True,', '+    allow_methods=["*"],', '+)'),
        udiff('Program.cs', ' builder.Services.AddCors(o => o.AddDefaultPolicy(p => p', '-    .WithOrigins("https://portal.example.org")',
              '+    .SetIsOriginAllowed(_ => true)', '     .AllowCredentials()));'),
        udiff('portal/app.py', ' app = Flask(__name__)', '+CORS(app, supports_credentials=True)'),
    ),
    counterexamples=(
        udiff('server/app.js', ' app.use(cookieParser());', '+app.use(cors({ origin: true }));', ' app.use(session());'),
        udiff('server/app.js', ' app.use(cookieParser());', '+app.use(cors({ origin: ["https://portal.northbay.health"], credentials: true }));'),
        udiff('api/main.py', ' app = FastAPI()', '+app.add_middleware(', '+    CORSMiddleware,', '+    allow_origins=["*"],',
              '+    allow_methods=["GET"],', '+)'),
        udiff('portal/app.py', ' app = Flask(__name__)', '+CORS(app, origins=["https://portal.example.org"], supports_credentials=True)'),
    ),
)

# ---------------------------------------------------------------- ACC-009 authentication switched off by configuration

_AUTH_WORDS = (r"(?:auth|authn|authz|authentication|authorization|oidc|oauth2?|jwt|sso|saml|login|keycloak|okta|cognito|"
               r"iap|basic_?auth|require_?auth\w*|security)")
_OFF = r"""["']?(?:false|0|no|off|disabled)["']?\s*,?\s*(?:#.*)?$"""
# `AUTH_ENABLED=false`, `auth.enabled: false`, `xpack.security.enabled: false`, `"RequireAuthentication": false`
_AUTH_FLAG_OFF_RE = re2.compile(
    r"""(?i)^\s*(?:export\s+)?["']?(?:[\w\-]+[._\-])*""" + _AUTH_WORDS + r"""[._\-]?(?:enabled?|required|enforced?|enforcement|active|check)"""
    r"""["']?\s*[:=]\s*""" + _OFF + r"""|"""
    r"""(?i)^\s*["']?(?:[\w\-]+[._\-])*""" + _AUTH_WORDS + r"""[._\-]?(?:disabled?|skip|bypass)["']?\s*[:=]\s*["']?(?:true|1|yes|on)["']?\s*,?\s*$"""
)
# `enabled: false` nested under an `auth:` / `authentication:` / `oidc:` block (Helm values, application.yml)
_ENABLED_OFF_RE = re2.compile(r"""(?i)^\s*["']?(?:enabled?|required|enforced?|active)["']?\s*[:=]\s*""" + _OFF)
_AUTH_KEY_RE = re2.compile(r"(?i)^(?:[\w\-]*[._\-])?" + _AUTH_WORDS + r"$")
# Local, development and test configuration may run without sign-in.
_DEV_PATH_RE = re2.compile(r"(?i)(?:^|[/._\-])(?:dev|develop|development|local|localhost|test|tests|testing|ci|e2e|sandbox|example|sample|demo)(?:[/._\-]|$)")


def _auth_config_off(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES or _DEV_PATH_RE.search(ctx.path):
        return
    flat = ctx.lines_matching(_AUTH_FLAG_OFF_RE.pattern)
    nested = ctx.lines_matching(_ENABLED_OFF_RE.pattern)
    if not flat and not nested:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or is_comment(ln.text):
                continue
            if ln.new_no in flat:
                yield Hit(ln.new_no)
            elif ln.new_no in nested:
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                keys = enclosing_keys(post, i, hunk.header) if i is not None else []
                if keys and _AUTH_KEY_RE.search(keys[-1].strip("\"'")):
                    yield Hit(ln.new_no)


_AUTH_CONFIG_OFF = Rule(
    id="ACC-009",
    category="access-control",
    severity="critical",
    message=(
        "Authentication is switched off by configuration, so the service answers every caller without a token or "
        "session. Keep it on outside local development; if a path must be public, exempt that path only."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "properties", "dotenv", "toml", "json", "ini", "hcl", "terraform", "xml"}),
    keywords=("enable", "enforce", "required", "active", "check", "disable", "skip", "bypass"),
    check=_auth_config_off,
    examples=(
        udiff('charts/patient-api/values-prod.yaml', ' auth:', '-  enabled: true', '+  enabled: false', '   issuer: https://login.example.org/realms/staff'),
        udiff('deploy/records.env', ' LOG_LEVEL=info', '+AUTH_ENABLED=false'),
        udiff('src/main/resources/application.properties', ' server.port=8443', '+app.security.oidc.enabled=false'),
        udiff('config/elasticsearch.yml', ' cluster.name: phi-search', '+xpack.security.enabled: false'),
    ),
    counterexamples=(
        udiff('charts/patient-api/values-dev.yaml', ' auth:', '-  enabled: true', '+  enabled: false'),
        udiff('charts/patient-api/values-prod.yaml', ' metrics:', '-  enabled: true', '+  enabled: false'),
        udiff('deploy/records.env', ' LOG_LEVEL=info', '+AUTH_ENABLED=true'),
        udiff('charts/patient-api/values-prod.yaml', ' podSecurityContext:', '+  enabled: false'),
    ),
)

RULES: tuple[Rule, ...] = (_REMOVED_GUARD, _ANONYMOUS, _NEW_ROUTE, _BACKDOOR, _IDOR, _WILDCARD, _SCOPE_FROM_REQUEST,
                           _CORS_CREDENTIALS, _AUTH_CONFIG_OFF)
