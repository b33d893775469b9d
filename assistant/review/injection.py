"""Injection rules: SQL/JPQL, shell, eval, unsafe deserialization, template, LDAP/XPath.

The SQL and LDAP/XPath rules share one question: is a string literal that
holds query text *built* on this line from something that is not a literal --
an f-string/template/`$""` interpolation, `+` concatenation, `%` or
`.format()`/`Sprintf`/`String.format` formatting? `lexing.mask` answers it for
every language at once. Bound parameters (`%s` with a separate tuple, `?`,
`:name`, `$1`, `@p`) never appear as building, so they pass. Interpolations
of UPPER_CASE constants or generated placeholder lists are not input and pass
too. Test files are skipped.
"""

from __future__ import annotations

from collections.abc import Container, Iterator

from assistant.review import re2fast as re2

from assistant.diffs import DiffLine
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.lexing import Masked, StrLit, balanced_span, mask

_REGS = ("HIPAA 164.312(c)(1)", "OWASP A03:2021")

SQL_TEXT_RE = re2.compile(
    r"(?i)(?:\bselect\s+(?:distinct\s+|top\s+\d+\s+)?[\w*,.\s\"'\[\]()`]+?\s+from\b|\bselect\s+\*|\binsert\s+into\b|"
    r"\bupdate\s+[\w.\"\[\]`]+\s+set\b|\bdelete\s+from\b|\bmerge\s+into\b|"
    r"\bwhere\s+[\w.\"\[\]()`]+\s*(?:=|<|>|!=|<>|\blike\b|\bilike\b|\bin\b|\bis\b|\bbetween\b)|"
    r"\border\s+by\b|\bgroup\s+by\b|\bjoin\s+[\w.\"`]+(?:\s+\w+)?\s+on\b|\bvalues\s*\(|\btruncate\s+table\b|"
    r"\bdrop\s+table\b|\balter\s+table\b|\bcreate\s+table\b|\bcall\s+[\w.]+\s*\(|"
    r"^\s*(?:and|or)\s+[\w.\"`]+\s*(?:=|<|>|\blike\b|\bilike\b|\bin\b)|\bfrom\s+[\w.\"`]+\s+(?:where|join|order|limit)\b|"
    r"\blimit\s*$|\bwhere\s*$|\b[\w.]+\s*(?:=|like|ilike)\s*'%?$)"
)
_SQL_STRONG_RE = re2.compile(
    r"(?i)(?:\bselect\b[^\n]*\bfrom\b|\binsert\s+into\b|\bupdate\s+[\w.\"\[\]`]+\s+set\b|\bdelete\s+from\b|"
    r"\bwhere\b|\border\s+by\b|\bmerge\s+into\b|\bexec\b|\bvalues\s*\()"
)
_SAFE_INTERP_RE = re2.compile(
    r"^\s*(?:[A-Z][A-Z0-9_]*|self\.[A-Z_][A-Z0-9_]*|cls\.[A-Z_][A-Z0-9_]*|\w*placeholders?\w*|\w*_?columns?|\w*Columns|\w*[Cc]ols|"
    r"strings\s*\.\s*Join\s*\(\s*(?:\w*[Cc]olumns?|\w*[Cc]ols|[A-Z][A-Z0-9_]*|\w*[Pp]laceholders?\w*|marks|qs)\s*,.*|"
    r"\w*(?:table_?name|TableName)\w*|self\.(?:table|model)\w*|len\s*\(.*\)|int\s*\(.*\)|float\s*\(.*\)|str\s*\(\s*int\s*\(.*\)|"
    r"[\"',\s]*\.join\s*\(\s*\[?\s*[\"'](?:\?|%s|\$\d+)[\"'].*|\d+|schema\w*|ph|qs|"
    r"[\w.]*(?:quote|escape|format_\w*name|quote_ident|quote_literal|sanitize|identifier)\w*\s*\(.*)\s*(?::[^}]*)?$"
)
_GO_FMT_RE = re2.compile(r"\b(?:fmt\s*\.\s*Sprintf|String\s*\.\s*format|string\s*\.\s*Format|sprintf|format)\s*\(\s*$")


def _code_between(m: Masked, a: int, b: int) -> str:
    return m.masked[a:b]


_JOINED_NAME_RE = re2.compile(r"^(?:strings\s*\.\s*Join\s*\(\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*\.\s*join\s*\()")


def built_literals(m: Masked, constants: Container[str] = frozenset()) -> Iterator[tuple[StrLit, str]]:
    """String literals built dynamically on this line, with how: interpolation, concat, % or format().

    `constants` are names the file binds to a plain literal (`const labsTable = "lab_results"`): not input."""
    code = m.masked
    for k, s in enumerate(m.strings):
        unsafe = [e for e in s.interpolations if not _SAFE_INTERP_RE.search(e) and e.strip() not in constants]
        if s.formatted and unsafe:
            yield s, "interpolation"
            continue
        after = code[s.end: s.end + 200].lstrip()  # bounded windows: a 1 MB line stays linear
        before = code[max(0, s.start - 200): s.start].rstrip()
        # "..." % x   /   "...".format(x)   /   "...".formatted(x)
        if after.startswith("%") and not after.startswith("%=") and ("%s" in s.content or "%(" in s.content or "%d" in s.content or "%r" in s.content):
            rest = after[1:].lstrip()
            if not _SAFE_INTERP_RE.search(rest.split(")")[0].lstrip("( ").split(",")[0]):
                yield s, "% formatting"
                continue
        if after.startswith((".format(", ".formatted(")) and "{" in s.content or after.startswith(".formatted("):
            yield s, "format()"
            continue
        # fmt.Sprintf("...%s...", x) / String.format / string.Format
        if _GO_FMT_RE.search(before) and (
            re2.search(r"%[-+# 0-9.]*[svqx]", s.content) or re2.search(r"\{\d+\}", s.content)
        ) and after.startswith(","):
            if not all(_SAFE_INTERP_RE.search(a) or a.strip() in constants for a in _call_args(after[1:])):
                yield s, "format()"
            continue
        # concatenation with a non-literal operand
        for side, operand in (("after", after), ("before", before)):
            if side == "after" and operand.startswith("+") and not operand.startswith("+="):
                nxt = operand[1:].lstrip()
                token = re2.split(r"[\s+)\];,]", nxt)[0]
                joined = _JOINED_NAME_RE.search(token)  # `strings.Join(where` / `where.join(`: the list joined
                if nxt and not nxt.startswith(("\"", "'", "`")) and not _SAFE_INTERP_RE.search(token) and (
                    token not in constants
                ) and (joined is None or (joined.group(1) or joined.group(2)) not in constants):
                    yield s, "concatenation"
                    break
            if side == "before" and (operand.endswith("+") or operand.endswith("||")) and not operand.endswith("++"):
                prev = re2.split(r"[\s(=+,|]", operand.rstrip("+|").rstrip())[-1]
                if prev and not prev.endswith(("\"", "'", "`")) and not _SAFE_INTERP_RE.search(prev) and (
                    prev not in constants
                ):
                    yield s, "concatenation"
                    break
        else:
            if before.endswith("+=") and k == len(m.strings) - 1 and False:
                yield s, "concatenation"


def _call_args(code: str) -> list[str]:
    """The top-level comma-separated arguments from `code` up to the call's closing bracket (masked code)."""
    args: list[str] = []
    depth = 0
    start = 0
    for k, ch in enumerate(code):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                args.append(code[start:k])
                return args
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(code[start:k])
            start = k + 1
    args.append(code[start:])
    return args


# Every way `built_literals` knows of building a string shows one of these in the line: an interpolation
# (`{`), `%` formatting, `.format(`/`.formatted(`, fmt.Sprintf-style calls (with `%` or `{0}` in the
# literal), `+` or `||` concatenation.
_BUILD_MARKS = ("{", "%", "+", "|", ".format")


def _check_sql(ctx: FileContext) -> Iterator[Hit]:
    """SQL/JPQL text built from non-literal parts: INJ-001."""
    if ctx.is_test or ctx.language in ("markdown", "text", "yaml", "json", "terraform", "dotenv", "properties"):
        return
    if ctx.language == "sql":
        yield from _check_sql_file(ctx)
        return
    if ctx.language == "xml":
        yield from _check_mapper_xml(ctx)
        return
    sql_lines = ctx.scan(_SQL_IN_STRING, added_only=False)
    if not sql_lines:
        return
    # A match may start at a quote lines above and run to a keyword (a multi-line literal): it hides the lines it
    # spans, so the raw-SQL calls of the added lines are looked for on their own (`db.Where(fmt.Sprintf("mrn = '%s'"`).
    raw_lines = ctx.scan(_RAW_CALL_CANDIDATE)
    if raw_lines:
        sql_lines = sorted({*sql_lines, *raw_lines}, key=lambda x: x.new_no or 0)
    multi: set[int] = set()
    if ctx.scan(_MULTILINE_OPEN_RE.pattern, lower=False):
        for hit in _multiline_sql(ctx, _LazyConstants(ctx)):
            multi.add(hit.line)
            yield hit
    if ctx.language == "csharp" and ctx.scan('@"', added_only=False, lower=False):
        for hit in _verbatim_sql(ctx, _LazyConstants(ctx)):
            multi.add(hit.line)
            yield hit
    todo: list[DiffLine] = []
    seen: set[int] = set()
    for s_ln in sql_lines:
        where = ctx.position(s_ln.new_no or 0)
        if where is None:
            continue
        post, j = where
        for cand in post[j: j + 4]:
            if cand.kind == "+" and cand.new_no not in seen:
                seen.add(cand.new_no or 0)
                todo.append(cand)
    masks_by_post: dict[int, dict[int, Masked]] = {}
    constants = _LazyConstants(ctx)
    for ln in sorted(todo, key=lambda x: x.new_no or 0):
        if ln.new_no in multi:
            continue
        post, i = ctx.position(ln.new_no or 0)  # type: ignore[misc]
        masks = masks_by_post.setdefault(id(post), {})
        if True:
            if not any(k in ln.text for k in ("'", '"', "`")):
                continue
            if not any(k in ln.text for k in _BUILD_MARKS) and not (ctx.language == "kotlin" and "$" in ln.text):
                continue  # `built_literals` needs an interpolation, %, format(), + or ||: none here
            m = masks.setdefault(i, mask(ln.text))
            if _PLACEHOLDER_LIST_RE.search(ln.text):
                continue  # "IN (" + ",".join("?" * n) + ")": placeholders, not values
            raw_call = _RAW_SQL_CALL_RE.search(m.masked)
            for s, how in built_literals(m, constants):
                if how == "interpolation" and _binds_interpolation(m.masked, s):
                    continue
                # the raw-SQL argument itself, not a bound value later in the call (`knex.raw(sql, [`${q}%`])`)
                in_raw = raw_call is not None and raw_call.end() <= s.start + 2 and (
                    s.start - raw_call.end() <= 3 or "," not in m.masked[raw_call.end(): s.start])
                if in_raw or SQL_TEXT_RE.search(s.content) or _continues_sql(post, i, masks):
                    yield Hit(ln.new_no or 1, f"SQL is built by {how} of a value into the query text. Use bound "
                              "parameters (`?`, `%s` with a separate tuple, `:name`, `$1`) or the ORM's filters.")
                    break
            else:
                # Ruby splices `#{expr}` into a double-quoted string: `where("last_name LIKE '#{params[:q]}%'")`
                if ctx.language == "ruby" and "#{" in ln.text:
                    for lit in m.strings:
                        if m.masked[lit.start: lit.start + 1] == '"' and _ruby_interpolates(lit.content) and (
                            SQL_TEXT_RE.search(lit.content) or (raw_call is not None and raw_call.end() == lit.start + 1)
                        ):
                            yield Hit(ln.new_no or 1, "SQL is built by interpolation of a value into the query text. "
                                      "Use bound parameters (`where(\"last_name LIKE ?\", value)`, hash conditions) "
                                      "or `sanitize_sql_like`.")
                            break
                # Kotlin/Groovy splice a bare `$name` into any string ("... WHERE ward = '$ward'")
                if ctx.language == "kotlin" and "$" in ln.text:
                    for lit in m.strings:
                        if _KOTLIN_TEMPLATE_RE.search(lit.content) and SQL_TEXT_RE.search(lit.content):
                            yield Hit(ln.new_no or 1, "SQL is built by interpolation of a value into the query "
                                      "text. Use bound parameters (`?`, `:name`) or the ORM's filters.")
                            break


# A formatted string that opens on one line and closes lines later: Python `f"""`, C# `$"""`, a JS template.
_MULTILINE_OPEN_RE = re2.compile(r"""(?:\b[fF][rR]?|\b[rR][fF]|\$)(?:\"\"\"|''')|(?m:^)[^`\n]*`[^`\n]*(?m:$)""")
_PY_HOLE_RE = re2.compile(r"(?:^|[^{])\{([^{}]+)\}")
_JS_HOLE_RE = re2.compile(r"\$\{([^{}]+)\}")


def _multiline_sql(ctx: FileContext, constants: Container[str]) -> Iterator[Hit]:
    """Interpolations on the lines of a formatted string that spans several lines and holds SQL:
    `sql = f'''` ... `WHERE mrn = '{mrn}'` ... `'''` (each line alone shows no string)."""
    for opener in ctx.scan(_MULTILINE_OPEN_RE.pattern, added_only=False, lower=False):
        where = ctx.position(opener.new_no or 0)
        if where is None:
            continue
        post, i = where
        text = opener.text
        triple = '"""' if '"""' in text else ("'''" if "'''" in text else None)
        js = triple is None
        quote = "`" if js else triple
        if js and ctx.language not in ("javascript", "typescript"):
            continue
        if not js and quote is None:
            continue
        if js and re2.search(r"[\w$>]\s*`", text):
            continue  # a tagged template (`sql\``, `prisma.$queryRaw<Row[]>\``): the tag binds every value
        if text.count(quote) != 1:  # type: ignore[arg-type]
            continue  # closed on the same line (a one-line string: the main scan reads it)
        if not js and _MULTILINE_OPEN_RE.search(text) is None:
            continue
        body: list[DiffLine] = []
        for x in post[i + 1: i + 30]:
            if quote in x.text:  # type: ignore[operator]
                break
            body.append(x)
        sql = "\n".join(x.text for x in body)
        if _SQL_STRONG_RE.search(sql) is None or SQL_TEXT_RE.search(sql) is None:
            continue
        holes = _JS_HOLE_RE if js else _PY_HOLE_RE
        for x in body:
            if x.kind != "+" or "{" not in x.text:
                continue
            unsafe = [e for e in holes.findall(x.text) if not _SAFE_INTERP_RE.search(e) and e.strip() not in constants]
            if unsafe and x.new_no is not None:
                yield Hit(x.new_no, "SQL is built by interpolation of a value into a multi-line query string. Use "
                                    "bound parameters (`%(name)s` with params=, `?`, `:name`, `$1`).")
                break


def _verbatim_sql(ctx: FileContext, constants: Container[str]) -> Iterator[Hit]:
    """C# verbatim strings (`@"SELECT ...` over several lines) closed and concatenated with a value on a
    later line: `WHERE LastName = '" + lastName + "'";` -- that line alone starts inside the string."""
    for opener in ctx.scan(r'@"', added_only=False, lower=False):
        where = ctx.position(opener.new_no or 0)
        if where is None or opener.text.count('"') != 1:
            continue
        post, i = where
        body: list[DiffLine] = []
        for x in post[i + 1: i + 30]:
            body.append(x)
            if '"' in x.text:
                break
        else:
            continue
        closing = body[-1]
        sql = opener.text + "\n" + "\n".join(x.text for x in body)
        if closing.kind != "+" or closing.new_no is None or _SQL_STRONG_RE.search(sql) is None:
            continue
        after = closing.text.split('"', 1)[1].lstrip()
        if after.startswith("+"):
            token = re2.split(r"[\s+)\];,]", after[1:].lstrip())[0]
            if token and token[0] not in "\"'" and not _SAFE_INTERP_RE.search(token) and token not in constants:
                yield Hit(closing.new_no, "SQL is built by concatenation of a value into a multi-line query string. "
                                          "Use bound parameters (`@name` with an anonymous object, `?`).")


_CONSTANT_BINDING = (
    r"(?:^|\n)[ \t]*(?:(?:const|final|static|readonly|private|public|internal|let|var|val)\s+)*(?:[\w<>\[\]]+\s+)?"
    r"([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?(?::=|=)\s*[\"'`][\w.\-\"]*[\"'`]\s*;?[ \t]*(?:\n|$)"
)
_CONSTANT_BINDING_RE = re2.compile(_CONSTANT_BINDING)
_KOTLIN_TEMPLATE_RE = re2.compile(r"(?:^|[^\\$])\$[a-z_][A-Za-z0-9_]*")
# `#{params[:q]}` / `#{name}`: an expression spliced in; not `#{TABLE}` (a constant) or one quoted/cast on the way
_RUBY_INTERP_RE = re2.compile(r"#\{\s*[a-z_@][^}]*\}")
_RUBY_SAFE_INTERP = ("quote", "sanitize", "to_i", "to_f", "Integer(")


def _ruby_interpolates(content: str) -> bool:
    return any(not any(s in m for s in _RUBY_SAFE_INTERP) for m in _RUBY_INTERP_RE.findall(content))


class _LazyConstants:
    """`_literal_constants(ctx)`, computed on the first `in` (most files never build a SQL string)."""

    __slots__ = ("_ctx", "_names")

    def __init__(self, ctx: FileContext) -> None:
        self._ctx = ctx
        self._names: frozenset[str] | None = None

    def __contains__(self, name: object) -> bool:
        if self._names is None:
            self._names = _literal_constants(self._ctx)
        return name in self._names


def _literal_constants(ctx: FileContext) -> frozenset[str]:
    """Names the visible file binds to a plain identifier-like literal (a table or column name constant)."""
    names = set()
    for ln in ctx.scan(r"(?m)(?::=|=)[ \t]*[\"'`][\w.\-]*[\"'`][ \t]*;?[ \t]*$", added_only=False, lower=False):
        m = _CONSTANT_BINDING_RE.search(ln.text)
        if m is not None:
            names.add(m.group(1))
    # `marks = ",".join("?" for _ in ids)`: a generated placeholder list, whatever it is called
    for ln in ctx.scan(_PLACEHOLDER_LIST_RE.pattern, added_only=False, lower=False):
        m = _PLACEHOLDER_BINDING_RE.search(ln.text)
        if m is not None:
            names.add(m.group(1))
    names |= _placeholder_clause_lists(ctx)
    # `order_by = SORT_COLUMNS.get(sort, SORT_COLUMNS["name"])`: a value picked from a constant allow-list
    for ln in ctx.scan(r"=\s*[A-Z][A-Z0-9_]+\s*(?:\.\s*get\s*\(|\[)", added_only=False, lower=False):
        m = _ALLOW_LIST_BINDING_RE.search(ln.text)
        if m is not None:
            names.add(m.group(1))
    return frozenset(names)


_ALLOW_LIST_BINDING_RE = re2.compile(
    r"^\s*(?:(?:const|let|var|val|final)\s+)?([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?(?::=|=)\s*[A-Z][A-Z0-9_]+\s*"
    r"(?:\.\s*get\s*\([^()]*(?:\[[^\]]*\])?[^()]*\)|\[[^\]]*\])\s*;?\s*(?:#.*|//.*)?$"
)


# A list of WHERE clauses each holding a numbered placeholder, not a value: Go
# `where = append(where, fmt.Sprintf("ward_code = $%d", len(args)))`, JS `where.push(`status = $${params.length}`)`.
_CLAUSE_APPEND_RE = re2.compile(r"\bappend\s*\(\s*([A-Za-z_]\w*)\s*,|\b([A-Za-z_]\w*)\s*\.\s*(?:push|append|add|Add)\s*\(")
_PLACEHOLDER_CLAUSE_RE = re2.compile(
    r"(?:\bfmt\s*\.\s*Sprintf|\bString\s*\.\s*format|\bstring\s*\.\s*Format)\s*\(\s*\"[^\"%]*(?:\$|@p|:)%d[^\"%]*\"\s*,\s*"
    r"(?:len\s*\(\s*\w+\s*\)|\w+\s*\.\s*(?:size|Count|length)\s*(?:\(\s*\))?)\s*(?:[+-]\s*\d+\s*)?\)\s*\)\s*$|"
    r"`[^`$]*\$\$\{\s*\w+\s*\.\s*length\s*\}[^`$]*`\s*\)\s*;?\s*$"
)


def _placeholder_clause_lists(ctx: FileContext) -> frozenset[str]:
    """Names of clause lists whose every appended element is a literal or a numbered placeholder clause."""
    safe: set[str] = set()
    unsafe: set[str] = set()
    for ln in ctx.scan(r"append|push|\.add", added_only=False):
        m = _CLAUSE_APPEND_RE.search(ln.text)
        if m is None:
            continue
        name = m.group(1) or m.group(2)
        rest = ln.text[m.end():]
        if _PLACEHOLDER_CLAUSE_RE.search(rest):
            safe.add(name)
        elif not re2.search(r"^\s*[\"'`][^\"'`$%{]*[\"'`]\s*\)\s*;?\s*$", rest):
            unsafe.add(name)
    return frozenset(safe - unsafe)


_PLACEHOLDER_BINDING_RE = re2.compile(
    r"^\s*(?:(?:const|let|var|val|final|string|String)\s+)?([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?(?::=|=)\s*[^=]"
)


# APIs that turn each interpolation hole into a bound parameter: a tagged template (`sql\`...\``,
# Prisma `$queryRaw\`...\``) or EF Core's FormattableString overloads (`FromSqlInterpolated($"...")`).
_BINDING_TAG_RE = re2.compile(r"(?:^|[^\w$])(?:[\w$]+\s*\.\s*)*([\w$]+)$")
_NOT_TAGS = frozenset({"return", "await", "yield", "typeof", "case", "in", "of", "void", "throw", "new", "else", "do"})
_BINDING_CALL_RE = re2.compile(
    r"\b(?:FromSqlInterpolated|ExecuteSqlInterpolated|ExecuteSqlInterpolatedAsync|FromSql|ExecuteSql|"
    r"ExecuteSqlAsync|SqlQuery|Database\s*\.\s*SqlQuery\w*)\s*(?:<[\w.]+>)?\s*\(\s*$"
)


def _binds_interpolation(code: str, s: StrLit) -> bool:
    before = code[max(0, s.start - 80): s.start]
    if code[s.start: s.start + 1] == "`":
        tag = _BINDING_TAG_RE.search(before)
        return tag is not None and tag.group(1) not in _NOT_TAGS
    # C# $"..." / $@"...": the prefix sits before the quote
    head = before.rstrip("$@")
    return _BINDING_CALL_RE.search(head) is not None


# Query APIs whose argument is raw SQL: any string built into them is injectable, SQL keywords or not.
_RAW_SQL_CALL_RE = re2.compile(
    r"\b(?:whereRaw|orWhereRaw|havingRaw|orderByRaw|groupByRaw|joinRaw|selectRaw|FromSqlRaw|ExecuteSqlRaw|"
    r"ExecuteSqlRawAsync|SqlQueryRaw|createNativeQuery|createQuery|createSQLQuery|nativeQuery|executeQuery|"
    r"executeUpdate|executeLargeUpdate|prepareStatement|queryForObject|queryForList|queryForMap|"
    r"\.raw|\.extra|RawSQL|Raw|Exec|QueryRow|QueryRowContext|QueryContext|ExecContext|execute|executemany|"
    r"executescript|exec_driver_sql|text|sql|query|unsafe|\$queryRawUnsafe|\$executeRawUnsafe|"
    r"where|andWhere|orWhere|having|literal|"
    # gorm's chain methods take raw SQL conditions: `db.Where(fmt.Sprintf("mrn = '%s'", mrn))`
    r"Where|Not|Order|Having|Joins|Group)\s*\(\s*"
    r"(?:(?:fmt\s*\.\s*Sprintf|String\s*\.\s*format|string\s*\.\s*Format)\s*\(\s*|"
    # Django's `.extra(where=[f"ward_code = '{ward}'"])`: the keyword argument's list holds raw SQL
    r"(?:where|select|tables|order_by)\s*=\s*[\[(]\s*)?[$@]?[rbuf]?[\"'`]"
)
_PLACEHOLDER_LIST_RE = re2.compile(r"\.join\s*\(\s*\[?\s*[\"'](?:\?|%s|\$\d+|:\w+)[\"']|[\"'](?:\?|%s)[\"']\s*\*\s*len\s*\(|\brepeat\s*\(\s*[\"']\?|Repeat\s*\(\s*\"\?")
# A SQL word after an opening quote on the line, a raw-SQL API, or a query being extended with +=.
_SQL_IN_STRING = (
    r"[\"'`][^\"'`]*\b(?:select|insert|update|delete|where|order by|group by|values|merge into|join|truncate|"
    r"drop table|alter table|create table|exec|and|or|limit|from|set|call)\b|"
    r"(?:raw|fromsqlraw|createnativequery|createquery|executequery|executeupdate|\.where|\.andwhere|\.orwhere|"
    r"\.having|\.extra|\.literal)\s*\(|"
    r"\b(?:sql|query|stmt|statement|where|clause|filter)\w*\s*\+=|\bexecute\s+(?:immediate\s+)?'|\bexec\s*\("
)
_RAW_CALL_CANDIDATE = r"(?:\.where|\.andwhere|\.orwhere|\.having|\.raw|\.extra|\.literal|\.order|\.joins|\.not|\.group)\s*\(\s*(?:fmt\.sprintf\s*\(\s*)?[$@]?[rbuf]?[\"'`]"
_SQL_WORDS = (
    r"select|insert|update|delete|where|order by|group by|values|merge into|join|truncate|drop table|"
    r"alter table|create table|exec|sql|query|\+=|^\s*(?:and|or)\s|raw\(|raw\s*\(|fromsqlraw|createnativequery"
)


def _check_mapper_xml(ctx: FileContext) -> Iterator[Hit]:
    """MyBatis/iBATIS mappers: `${...}` splices text into the SQL (`#{...}` would bind it)."""
    for ln in ctx.scan(r"\$\{[^}]+\}"):
        window = "\n".join(x.text for x in ctx.neighbours(ln.new_no or 0, 4, 0))
        if _SQL_STRONG_RE.search(window) or re2.search(r"(?i)<(?:select|update|delete|insert|sql)\b", window):
            yield Hit(ln.new_no or 1, "A MyBatis `${...}` substitution splices the value into the SQL text. Use "
                      "`#{...}`, which binds it as a parameter (and an allow-list for column names).")


def _continues_sql(post: list[DiffLine], i: int, masks: dict[int, Masked]) -> bool:
    """Whether line i continues a multi-line SQL string started in the lines just above."""
    text = post[i].text.lstrip()
    if not (text[:1] in "\"'`+" or text[:2] in ('f"', "f'", '$"') or text.startswith(("sql +=", "query +=", "q +="))):
        if not re2.search(r"(?i)\b(sql|query|stmt|statement|where|clause|filter)\w*\s*\+=", text):
            return False
    for j in range(i - 1, max(-1, i - 4), -1):
        m = masks.setdefault(j, mask(post[j].text))
        if any(_SQL_STRONG_RE.search(s.content) for s in m.strings):
            return True
        stripped = post[j].text.strip()
        if stripped.endswith((";", ":")) and not stripped.endswith(("+", "(", ",")):
            return False
    return False


_SQL_DYNAMIC_RE = re2.compile(
    r"(?i)(?:\bexecute\s+(?:immediate\s+)?'[^']*'\s*\|\||\bexec(?:ute)?\s*\(\s*'[^']*'\s*\+|"
    r"'[^']*\b(?:select|where|from|insert|update|delete|and|or)\b[^']*'\s*(?:\|\||\+)\s*@?[A-Za-z_]|"
    r"\bexecute\s+(?:immediate\s+)?[a-z_]\w*\s*(?:;|$)|sp_executesql\s+@\w+\s*;?\s*$)"
)


def _check_sql_file(ctx: FileContext) -> Iterator[Hit]:
    """Dynamic SQL in .sql files (PL/pgSQL EXECUTE '...' || v, T-SQL EXEC('...' + @v))."""
    dynamic = ctx.lines_matching(_SQL_DYNAMIC_RE.pattern)
    if not dynamic:
        return
    for ln in ctx.added:
        if ln.new_no not in dynamic:
            continue
        m = _SQL_DYNAMIC_RE.search(ln.text)
        if m is None:
            continue
        if "quote_literal" in ln.text or "quote_ident" in ln.text or "format(" in ln.text.lower() or "using" in ln.text.lower():
            continue
        if re2.search(r"(?i)\bexecute\s+[a-z_]\w*\s*(?:;|$)", m.group(0)) and "||" not in ctx.removed_text() + "".join(
            x.text for x in ctx.added
        ):
            continue
        yield Hit(ln.new_no or 1, "Dynamic SQL is built by concatenation. Use `EXECUTE ... USING` / "
                  "`sp_executesql` with parameters, or `format()` with %L/%I.")


_SHELL_CALL_RE = re2.compile(
    r"(?:\bsubprocess\s*\.\s*(?:run|call|Popen|check_output|check_call|getoutput|getstatusoutput)\s*\(|"
    r"\bos\s*\.\s*(?:system|popen|popen2|popen3|execl|execlp)\s*\(|\bcommands\s*\.\s*getoutput\s*\(|"
    r"(?:\bchild_process\s*\.\s*|\bcp\s*\.\s*|(?:^|[^.\w]))(?:exec|execSync)\s*\(\s*[`\"'\w]|"
    r"Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\s*\(|\bnew\s+ProcessBuilder\s*\(|"
    r"\bexec\s*\.\s*Command(?:Context)?\s*\(|\bProcess\s*\.\s*Start\s*\(|\bnew\s+ProcessStartInfo\s*\(|\bpty\s*\.\s*spawn\s*\(|\bspawn(?:Sync)?\s*\()"
)
_SHELL_PROGRAM_RE = re2.compile(r"^\s*(?:ctx\s*,\s*)?[\"'](?:/bin/|/usr/bin/)?(?:sh|bash|zsh|cmd(?:\.exe)?|powershell(?:\.exe)?|pwsh)[\"']\s*,\s*[\"'](?:-c|/c|/C|-Command)[\"']\s*,")


# `const run = util.promisify(exec)` / `const execAsync = promisify(child_process.exec)`: the alias runs a shell too
_EXEC_ALIAS_RE = re2.compile(
    r"\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:util\s*\.\s*)?promisify\s*\(\s*"
    r"(?:child_process\s*\.\s*|cp\s*\.\s*|childProcess\s*\.\s*)?exec(?:Sync)?\s*\)"
)


def _exec_aliases(ctx: FileContext) -> frozenset[str]:
    if ctx.language not in ("javascript", "typescript"):
        return frozenset()
    return frozenset(m.group(1) for ln in ctx.scan("promisify", added_only=False)
                     if (m := _EXEC_ALIAS_RE.search(ln.text)) is not None)


# Ruby runs a one-string command through the shell: `system("img2pdf #{f}")`, backticks, `%x(...)`, `IO.popen("...")`,
# `Open3.capture2("...")`, `exec("...")`, `spawn("...")`. With several arguments (`system("img2pdf", f)`) there is no shell.
_RUBY_SHELL_RE = re2.compile(
    r"(?:(?:^|[^.\w])(?:system|exec|spawn)|\bIO\s*\.\s*popen|\bOpen3\s*\.\s*(?:capture[23]e?|popen[23]e?|pipeline\w*)|"
    r"\bKernel\s*\.\s*(?:system|exec|spawn))\s*\(?\s*\"([^\"\n]*#\{[^\"\n]*)\"\s*(?:\)|,\s*\w+:|$)|"
    r"`([^`\n]*#\{[^`\n]*)`|%x[({\[]([^)}\]\n]*#\{[^)}\]\n]*)"
)


def _ruby_shell(ctx: FileContext) -> Iterator[Hit]:
    for ln in ctx.scan(r"#\{", lower=False):
        if ln.new_no is None or ln.text.lstrip().startswith("#"):
            continue
        m = _RUBY_SHELL_RE.search(ln.text)
        if m is None:
            continue
        command = m.group(1) or m.group(2) or m.group(3) or ""
        if not _ruby_interpolates(command) or all(
                any(k in x for k in ("shellescape", "Shellwords", "to_i")) for x in _RUBY_INTERP_RE.findall(command)):
            continue
        yield Hit(ln.new_no, "A shell command string is built with interpolation. Pass the program and its arguments "
                             "separately (`system(\"img2pdf\", path, \"-o\", out)`), or escape them with `Shellwords`.")


def _check_shell(ctx: FileContext) -> Iterator[Hit]:
    """Shell commands built from non-literal parts: INJ-002."""
    if ctx.is_test or ctx.language in ("markdown", "text", "yaml", "json", "dotenv", "properties", "sql", "terraform"):
        return
    if ctx.language == "ruby":
        yield from _ruby_shell(ctx)
        return
    call_re = _SHELL_CALL_RE
    aliases = _exec_aliases(ctx)
    if aliases:
        call_re = re2.compile(_SHELL_CALL_RE.pattern[:-1] + "|(?:^|[^.\\w$])(?:" + "|".join(re2.escape(a) for a in aliases)
                              + ")\\s*\\()")
    for ln in ctx.scan(call_re.pattern, added_only=False, lower=False):
        post, i = ctx.position(ln.new_no or 0) or ([], 0)
        m = call_re.search(ln.text)
        if m is None or not post:
            continue
        if True:
            span, starts = balanced_span(post, i, ln.text.rfind("(", m.start(), m.end()), max_lines=8)
            span_lines = post[i: i + len(starts)]
            if not any(s.kind == "+" for s in span_lines):
                continue
            name = m.group(0)
            alias = name.strip(" \t(").lstrip("=,;:({[!&|?").strip() in aliases
            if alias:
                name = "child_process.exec("  # `const run = util.promisify(exec)`: `run(...)` is `exec` through a shell
            if re2.search(r"(?:^|[^.\w])(?:exec|execSync)\s*\(", name) and "child_process" not in name and not (
                ctx.language in ("javascript", "typescript")
            ):
                continue  # a bare exec( outside JS is Python's exec (INJ-003) or a method
            args = span[1:-1] if span.endswith(")") else span[1:]
            masked = mask(args)
            first = _first_arg(masked)
            uses_shell = (
                "shell=True" in args.replace(" ", "")
                or "shell:true" in args.replace(" ", "")
                or any(k in name for k in ("os.", "system", "popen", "getoutput", "getRuntime"))
                or re2.search(r"(?:^|[^.\w])(?:exec|execSync)\s*\(", name) is not None
                or "child_process" in name
                or _SHELL_PROGRAM_RE.search(args) is not None
                or ("Process" in name and re2.search(r"(?i)cmd(?:\.exe)?[\"']|bash[\"']|/bin/sh|powershell", args) is not None)
            )
            if "spawn" in name and "shell" not in args:
                uses_shell = False
            if "ProcessBuilder" in name or "exec.Command" in name.replace(" ", ""):
                uses_shell = _SHELL_PROGRAM_RE.search(args) is not None
            if "getRuntime" in name and first.startswith(("new String[]", "new String [", "{")):
                inner = first.split("{", 1)[-1]
                uses_shell = _SHELL_PROGRAM_RE.search(inner) is not None
                if uses_shell:
                    rest = inner[_SHELL_PROGRAM_RE.search(inner).end():]  # type: ignore[union-attr]
                    if any(True for _ in built_literals(mask(rest))) or (
                        rest.strip() and rest.strip()[0] not in "\"'"
                    ):
                        yield Hit(ln.new_no or 1, "A shell command is built from a variable. Pass an argument "
                                  "array without `sh -c` and validate the values.")
                    continue
            if not uses_shell:
                continue
            dynamic = _is_dynamic(masked, args, first, post, i)
            if not dynamic:
                continue
            target = next((s for s in span_lines if s.kind == "+"), ln)
            yield Hit(target.new_no or 1, "A shell command is built from a variable or interpolated value. Pass an "
                      "argument list without a shell (`subprocess.run([...])`, `execFile`, `exec.Command(name, args...)`) "
                      "and validate the values against an allow-list.")


def _first_arg(m: Masked) -> str:
    depth = 0
    for k, ch in enumerate(m.masked):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            return m.text[:k].strip()
    return m.text.strip()


def _is_dynamic(m: Masked, args: str, first: str, post: list[DiffLine], i: int) -> bool:
    if any(True for _ in built_literals(m)):
        return True
    f = first.strip()
    if not f:
        return False
    if f[0] in "\"'`" or f[:2] in ('r"', "r'", "b\"", "b'", 'f"', "f'", '$"') or f[:3] in ('rf"', 'fr"', '$@"'):
        return False  # a constant command, or one whose every interpolation is quoted/safe (built_literals found none)
    if f.startswith("["):
        inner = mask(f)
        return any(True for _ in built_literals(inner)) and _SHELL_PROGRAM_RE.search(f[1:]) is not None
    if _SHELL_PROGRAM_RE.search(args):
        rest = args[_SHELL_PROGRAM_RE.search(args).end():].strip()  # type: ignore[union-attr]
        return bool(rest) and rest[0] not in "\"'`" or any(True for _ in built_literals(mask(rest)))
    name = re2.split(r"[\s,)]", f)[0]
    if re2.search(r"^[A-Z][A-Z0-9_]*$", name):
        return False
    # a name: dynamic unless bound to a constant literal just above
    for j in range(i - 1, max(-1, i - 8), -1):
        t = post[j].text.strip()
        if t.startswith(name + " =") or t.startswith(name + "=") or t.startswith(f"const {name} =") or t.startswith(f"let {name} ="):
            value = t.split("=", 1)[1].strip().rstrip(";")
            vm = mask(value)
            return not (value[:1] in "\"'" and not any(True for _ in built_literals(vm)))
    return True


_EVAL_RE = re2.compile(
    r"(?:(?:^|[^.\w])(?:eval|exec)\s*\(\s*([^)\s])|\bnew\s+Function\s*\(|\bvm\s*\.\s*run\w*\s*\(|"
    r"\bScriptEngine\w*\b.*\.eval\s*\(|\bengine\s*\.\s*eval\s*\(|\b(?:setTimeout|setInterval)\s*\(\s*[\"'`][^\"'`]*[\"'`]\s*\+|"
    r"\bexecfile\s*\(|\bcompile\s*\([^)]*,\s*[\"'][^\"']*[\"']\s*,\s*[\"']exec[\"'])"
)


_INPUT_RE = re2.compile(
    r"(?i)\b(?:request|req|params|query|body|form|args|argv|stdin|input|payload|user_?\w*|data|message|msg|"
    r"expr\w*|formula|code|source|script|rule\w*|text|content|cookie|headers?|event|json|blob|raw)\b"
)


def _assigned_from_input(window: str, call: str) -> bool:
    """Whether the name passed to eval/exec was assigned from something input-like just above."""
    m = re2.search(r"\(\s*([A-Za-z_]\w*)", call)
    if m is None:
        return False
    name = m.group(1)
    for line in window.split("\n"):
        a = re2.search(r"\b" + re2.escape(name) + r"\s*=\s*(.+)", line)
        if a and _INPUT_RE.search(a.group(1)):
            return True
    return False


def _check_eval(ctx: FileContext) -> Iterator[Hit]:
    """eval/exec of something other than a constant: INJ-003."""
    if ctx.is_test or ctx.language not in ("python", "javascript", "typescript", "java", "ruby", "php", None):
        return
    for ln in ctx.scan(_EVAL_RE.pattern, lower=False):
        m = _EVAL_RE.search(ln.text)
        if m is None:
            continue
        text = ln.text
        if "literal_eval" in text or re2.search(r"\.\s*(?:eval|exec)\s*\(\s*\)", text):
            continue
        if m.group(1) and m.group(1) in "\"'" and not any(True for _ in built_literals(mask(text[m.start(1):]))):
            continue
        if ctx.language == "java" and "eval" not in text:
            continue
        if ctx.language in ("javascript", "typescript") and re2.search(r"(?:^|[^.\w])exec\s*\(", text) and "eval" not in text:
            continue  # exec( in JS is child_process or RegExp: the shell rule owns it
        # Code generated by the program itself (templates, codegen) is not input: require a sign of input.
        window = "\n".join(x.text for x in ctx.neighbours(ln.new_no or 0, 6, 0))
        call = text[m.start(): m.start() + 400]
        if not (_INPUT_RE.search(call) or any(True for _ in built_literals(mask(call))) or (
            _INPUT_RE.search(window) and _assigned_from_input(window, call)
        )):
            continue
        yield Hit(ln.new_no or 1)


_DESERIALIZE = (
    r"(?:\b(?:pickle|cPickle|_pickle|dill|cloudpickle|marshal|shelve)\s*\.\s*(?:loads?|Unpickler|open)\s*\(|"
    r"\bjsonpickle\s*\.\s*decode\s*\(|\byaml\s*\.\s*(?:unsafe_load|unsafe_load_all|load|load_all|full_load)\s*\(|"
    r"\bnew\s+ObjectInputStream\s*\(|\bXMLDecoder\s*\(|\bjsonpickle\s*\.\s*loads\s*\(|\benableDefaultTyping\s*\(|\bactivateDefaultTyping\s*\(|"
    r"\bBinaryFormatter\b|\bNetDataContractSerializer\b|\bLosFormatter\b|\bSoapFormatter\b|\bObjectStateFormatter\b|"
    r"TypeNameHandling\s*\.\s*(?:All|Auto|Objects|Arrays)|\bunserialize\s*\(|"
    r"\btorch\s*\.\s*load\s*\(|\bjoblib\s*\.\s*load\s*\(|\b(?:pd|pandas)\s*\.\s*read_pickle\s*\(|"
    r"\bXStream\b.*\bfromXML\s*\(|\bnew\s+Yaml\s*\(\s*\)|\bMarshal\s*\.\s*load\b)"
)


def _check_deserialize(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    for ln in ctx.scan(_DESERIALIZE, lower=False):
        if _DESER_RE.search(ln.text) is None:
            continue
        text = ln.text
        if re2.search(r"(?:SafeLoader|CSafeLoader|BaseLoader|safe_load|SafeConstructor|weights_only\s*=\s*True)", text):
            continue
        if re2.search(r"\bshelve\s*\.\s*open\s*\(\s*(?:[A-Z][A-Z0-9_]*|[rbf]?[\"'][^\"'{]*[\"'])\s*[,)]", text):
            continue  # the module's own cache file at a fixed path, not data that arrived from outside
        if re2.search(r"\byaml\s*\.\s*(?:load|load_all)\s*\(", text):
            window = "\n".join(x.text for x in ctx.neighbours(ln.new_no or 0, 3, 2))
            if re2.search(r"SafeLoader|CSafeLoader|BaseLoader|SafeConstructor", window):
                continue
        yield Hit(ln.new_no or 1)


_DESER_RE = re2.compile(_DESERIALIZE)

_SSTI = (
    r"(?:\brender_template_string\s*\(\s*(?:f[\"']|request\b|req\.|[A-Za-z_][\w.]*(?:\[[^\]\n]{0,60}\])*\s*(?:\+|\)|,|$)|"
    r"[\"'][^\"'\n]*[\"']\s*(?:\+|%|\.format\s*\())|"
    r"\bTemplate\s*\(\s*(?:f[\"']|request\b|req\.|[\"'][^\"']*[\"']\s*\+|[a-z_]\w*\s*\+)|"
    r"\bfrom_string\s*\(\s*(?:f[\"']|request\b|req\.|[a-z_][\w.]*\s*[+)])|"
    r"\b(?:Handlebars|handlebars|hbs|Mustache|mustache|ejs|pug|jade|nunjucks|doT|_)\s*\.\s*(?:compile|render|renderString|template)\s*\(\s*(?:req\.|request\.|`[^`]*\$\{|[\"'][^\"']*[\"']\s*\+)|"
    r"\bVelocity\s*\.\s*evaluate\s*\(|\bnew\s+Template\s*\([^)]*\+|\bSpelExpressionParser\b.*parseExpression\s*\(\s*[a-z]|"
    r"\bparser\s*\.\s*parseExpression\s*\(\s*(?:req|request|input|user|param))"
)

_LDAP_FILTER_RE = re2.compile(
    r"(?i)\((?:[&|!]\s*\(?)?\s*(?:uid|cn|sAMAccountName|mail|userPrincipalName|memberOf|objectClass|ou|sn|givenName|"
    r"employeeNumber|displayName|member)\s*=\s*$|\((?:[&|!]\s*\(?)?\s*(?:uid|cn|sAMAccountName|mail|userPrincipalName|"
    r"memberOf|ou|sn|givenName|employeeNumber)\s*=\s*[{%$]"
)
_XPATH_RE = re2.compile(r"(?:\[\s*@?[\w:/@.-]+\s*=\s*['\"]?\s*$|\[\s*@?[\w:/@.-]+\s*=\s*['\"]?\s*[{%$]|^//\w|^/\w+/)")
_XPATH_CALL_RE = re2.compile(r"(?i)(xpath|selectNodes|selectSingleNode|evaluate|compile|XPath|select_one|findall|find|iterfind)")
_NOSQL_RE = re2.compile(r"\$where")


def _xpath_call_below(ctx: FileContext, number: int) -> bool:
    """`String expr = "//observation[...='" + code + "']";` then `xpath.evaluate(expr, ...)` on the next lines."""
    where = ctx.position(number)
    if where is None:
        return False
    post, i = where
    return any(re2.search(r"(?i)\bxpath\w*\s*\.\s*(?:evaluate|compile)\s*\(|\bselect(?:Single)?Nodes\s*\(|\.xpath\s*\(", x.text)
               for x in post[i + 1: i + 4])


def _check_ldap_xpath(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    for ln in ctx.scan(r"uid=|cn=|samaccountname|mail=|userprincipalname|memberof|ou=|sn=|givenname|employeenumber|"
                       r"member=|\[@|xpath|selectnodes|selectsinglenode|\$where|displayname=|evaluate|[\"']//\w"):
        low = ln.text.lower()
        if not any(k in low for k in ("uid=", "cn=", "samaccountname", "mail=", "userprincipalname", "memberof", "ou=",
                                      "sn=", "givenname", "employeenumber", "member=", "[@", "xpath", "selectnodes",
                                      "selectsinglenode", "$where", "evaluate", "displayname=", "//")):
            continue
        m = mask(ln.text)
        for s, how in built_literals(m):
            content = s.content
            if _LDAP_FILTER_RE.search(content) or _LDAP_FILTER_RE.search(content.split("{")[0]):
                yield Hit(ln.new_no or 1, f"An LDAP filter is built by {how}. Escape the value with the library's "
                          "filter escaping (ldap3 `escape_filter_chars`, `LdapEncoder.filterEncode`) or use a "
                          "parameterised filter.")
                break
            if (_XPATH_RE.search(content) or _XPATH_RE.search(content.split("{")[0])) and (
                    _XPATH_CALL_RE.search(ln.text) or _xpath_call_below(ctx, ln.new_no or 0)):
                yield Hit(ln.new_no or 1, f"An XPath expression is built by {how}. Use XPath variables "
                          "(`XPathVariableResolver`, lxml `$var` parameters) instead of splicing values in.")
                break
            if _NOSQL_RE.search(content) or _NOSQL_RE.search(m.masked[max(0, s.start - 30): s.start]):
                yield Hit(ln.new_no or 1, f"A MongoDB `$where` JavaScript clause is built by {how}. Use query "
                          "operators with values, never server-side JavaScript from input.")
                break


RULES: tuple[Rule, ...] = (
    Rule(
        id="INJ-001",
        category="injection",
        severity="high",
        message="SQL is built by string formatting or concatenation of a value. Use bound parameters (`?`, `%s` "
        "with a separate tuple, `:name`, `$1`) or the ORM's query API.",
        regulations=_REGS,
        keywords=("select", "insert", "update", "delete", "where", "from", "order by", "values", "execute", "exec",
                  "merge", "and ", "or ", "limit", "join", "sql", "query", "=", "literal("),
        check=_check_sql,
        examples=(
            "ehr/repo.py::sql = f\"SELECT id, mrn FROM patients WHERE family_name ILIKE '{family}%' LIMIT {limit}\"",
            "server/routes/p.js::const { rows } = await pool.query(\"SELECT id FROM patients WHERE mrn = '\" + req.params.mrn + \"'\");",
            "server/routes/r.js::await pool.query(`SELECT * FROM referrals WHERE code = '${req.params.code}'`);",
            "src/Dao.java::String q = \"SELECT p FROM Patient p WHERE p.lastName = '\" + lastName + \"'\";",
            "pkg/store.go::q := fmt.Sprintf(\"SELECT id FROM orders WHERE status = '%s'\", status)",
            "Data/Repo.cs::var sql = $\"DELETE FROM notes WHERE author = '{author}'\";",
            "ehr/repo.py::cur.execute(\"UPDATE visits SET note = '%s' WHERE id = %d\" % (note, vid))",
            "db/fn.sql::  EXECUTE 'SELECT count(*) FROM ' || tbl || ' WHERE ward = ' || ward;",
            "src/repo.ts::  return `SELECT id FROM patient WHERE name = '${name}'`;",
            "src/p.service.ts::return this.repo.createQueryBuilder('p').where(`p.city = '${city}'`).getMany();",
            "Data/Repo.cs::db.Patients.FromSqlRaw($\"SELECT * FROM Patients WHERE Name = '{name}'\").ToList();",
            "census/CensusDao.kt::        jdbc.queryForList(\"SELECT bed, patient_id FROM census WHERE ward = '$ward'\")",
            "internal/registry/find.go::\tif err := db.Where(fmt.Sprintf(\"mrn = '%s'\", mrn)).First(&p).Error; err != nil {",
            "app/controllers/patients_controller.rb::    @patients = Patient.where(\"last_name LIKE '#{params[:q]}%'\").limit(25)",
            "analytics/queries.py::def history(mrn):\n    sql = f\"\"\"\n        SELECT collected_at, value FROM lab_results\n"
            "        WHERE mrn = '{mrn}'\n    \"\"\"\n    return pd.read_sql(sql, engine)",
            "server/patients/rank.js::    order: [[Sequelize.literal(`similarity(\"lastName\", '${q}')`), 'DESC']],",
            "registry/cohorts.py::        cur.execute(f\"CALL refresh_cohort('{cohort_name}')\")",
            "internal/patients/lookup.go::import (\n\t\"fmt\"\n\n\t\"gorm.io/gorm\"\n)\n\nfunc ByMRN(db *gorm.DB, mrn string) (*Patient, error) {\n"
            "\tvar p Patient\n\terr := db.Where(fmt.Sprintf(\"mrn = '%s'\", mrn)).First(&p).Error",
            "ehr/search.py::order_by = request.args.get(\"sort\", SORT_COLUMNS[\"name\"])\nstmt = text(f\"SELECT id FROM patients ORDER BY {order_by} LIMIT :limit\")",
            "internal/encounters/search.go::where := []string{\"1=1\"}\nwhere = append(where, fmt.Sprintf(\"status = $%d\", len(args)))\n"
            "where = append(where, \"ward_code = '\"+f.Ward+\"'\")\n"
            "sql := \"SELECT id FROM encounters WHERE \" + strings.Join(where, \" AND \") + \" LIMIT 200\"",
            "Data/PatientQueries.cs::        var sql = @\"SELECT Id, Mrn FROM Patients\n                    WHERE LastName = '\" + lastName + \"'\";",
        ),
        counterexamples=(
            "ehr/repo.py::return self.conn.execute(sql, (ward_code, day, limit)).fetchall()",
            "internal/encounters/search.go::where := []string{\"1=1\"}\nif f.Ward != \"\" {\n\targs = append(args, f.Ward)\n"
            "\twhere = append(where, fmt.Sprintf(\"ward_code = $%d\", len(args)))\n}\n"
            "sql := \"SELECT id FROM encounters WHERE \" + strings.Join(where, \" AND \") + \" LIMIT 200\"",
            "ehr/repo.py::sql = \"SELECT id FROM encounters WHERE ward_code = %s AND day = %s\"",
            "ehr/search.py::order_by = SORT_COLUMNS.get(sort, SORT_COLUMNS[\"name\"])\nstmt = text(f\"SELECT id FROM patients ORDER BY {order_by} LIMIT :limit\")",
            "src/Dao.java::String sql = \"SELECT id FROM orders WHERE status = ? LIMIT ?\";",
            "server/routes/p.js::await pool.query(\"SELECT id FROM patients WHERE mrn = $1\", [req.params.mrn]);",
            "ehr/repo.py::sql = f\"SELECT id FROM patients WHERE id IN ({placeholders})\"",
            "labs/queries.py::marks = \",\".join(\"?\" for _ in patient_ids)\nsql = f\"SELECT id FROM lab_results WHERE patient_id IN ({marks})\"",
            "ehr/msg.py::log.info(f\"Selected {count} rows from the import\")",
            "tests/test_repo.py::sql = f\"SELECT * FROM patients WHERE mrn = '{mrn}'\"",
            "src/repo.ts::return this.prisma.$queryRaw`SELECT count(*) FROM \"Patient\" WHERE \"clinicId\" = ${clinicId}`;",
            "src/repo.ts::const rows = await sql`SELECT id FROM patient WHERE name = ${name}`;",
            "server/repo.js::search: (q) => knex.raw('SELECT id FROM patients WHERE family_name ILIKE ?', [`${q}%`]),",
            "src/p.service.ts::return this.repo.createQueryBuilder('p').where('p.zip = :zip', { zip }).getMany();",
            "store/labs.go::const labsTable = \"lab_results\"\n\nfunc q() string {\n\treturn \"SELECT id FROM \"+labsTable+\" WHERE patient_id = $1\"\n}",
            "Data/Repo.cs::db.Encounters.FromSqlInterpolated($\"SELECT * FROM Encounters WHERE Ward = {ward}\").ToList();",
            "internal/registry/find.go::\tif err := db.Where(\"mrn = ?\", mrn).First(&p).Error; err != nil {",
            "app/controllers/patients_controller.rb::    @patients = Patient.where(\"last_name LIKE ?\", \"#{params[:q]}%\").limit(25)",
            "app/models/report.rb::    rows = Encounter.where(\"ward_code = '#{WARD}' AND id = #{params[:id].to_i}\")",
            "analytics/queries.py::def history(mrn):\n    sql = f\"\"\"\n        SELECT collected_at, value FROM {LAB_TABLE}\n"
            "        WHERE mrn = %(mrn)s\n    \"\"\"\n    return pd.read_sql(sql, engine, params={\"mrn\": mrn})",
            "internal/labs/byids.go::\tq := fmt.Sprintf(\"SELECT id FROM lab_results WHERE id IN (%s)\", strings.Join(placeholders, \",\"))",
            "registry/cohorts.py::        cur.execute(\"CALL refresh_cohort(%s)\", (cohort_name,))",
            "Data/PatientQueries.cs::        var sql = @\"SELECT Id, Mrn FROM Patients\n                    WHERE LastName = @lastName\";",
            "internal/export/query.go::var exportColumns = []string{\"id\", \"ward_code\"}\n\nfunc q() string {\n"
            "\treturn fmt.Sprintf(\"SELECT %s FROM encounters WHERE day >= $1\", strings.Join(exportColumns, \", \"))\n}",
        ),
    ),
    Rule(
        id="INJ-002",
        category="injection",
        severity="critical",
        message="A shell command is built from a variable or interpolated value. Pass an argument list without a "
        "shell and validate values against an allow-list.",
        regulations=_REGS,
        keywords=("subprocess", "os.system", "popen", "exec", "processbuilder", "process.start", "processstartinfo", "spawn",
                  "getoutput", "#{"),
        check=_check_shell,
        examples=(
            "ops/exports.py::subprocess.run(f\"pg_dump --table={table} ehr | gzip > {target}\", shell=True, check=True)",
            "ops/backup.py::os.system(\"tar czf /backups/\" + name + \".tgz /data\")",
            "ops/run.js::child_process.exec(`convert ${req.query.file} out.pdf`);",
            "cmd/run.go::out, err := exec.Command(\"sh\", \"-c\", \"grep \"+pattern+\" /var/log/app.log\").Output()",
            "src/Run.java::Runtime.getRuntime().exec(\"ping -c 1 \" + host);",
            "server/scans.js::const { exec } = require(\"child_process\");\nconst run = util.promisify(exec);\n"
            "await run(`gs -q -sOutputFile=${out} \"${req.file.originalname}\"`);",
            "app/jobs/scan_import_job.rb::    system(\"img2pdf #{upload.original_filename} -o #{out}\")",
            "app/services/archive.rb::    output = `tar czf #{dest} #{params[:dir]}`",
        ),
        counterexamples=(
            "app/jobs/scan_import_job.rb::    system(\"img2pdf\", upload.stored_path, \"-o\", out.to_s)",
            "app/jobs/scan_import_job.rb::    system(\"img2pdf #{upload.stored_path.shellescape} -o #{out.to_s.shellescape}\")",
            "server/scans.js::const { execFile } = require(\"child_process\");\nconst run = util.promisify(execFile);\n"
            "await run(\"gs\", [\"-q\", `-sOutputFile=${out}`, req.file.path]);",
            "tools/archive.py::subprocess.run([\"tar\", \"--zstd\", \"-cf\", str(dest), \"-C\", str(archive), day_dir.name], check=True)",
            "tools/archive.py::subprocess.run(\"make clean\", shell=True, check=True)",
            "cmd/run.go::out, err := exec.Command(\"git\", \"log\", \"-1\", ref).Output()",
            "ops/run.js::execFile(\"convert\", [file, \"out.pdf\"]);",
        ),
    ),
    Rule(
        id="INJ-003",
        category="injection",
        severity="critical",
        message="Code is evaluated from a non-constant string (`eval`, `exec`, `new Function`, a script engine). "
        "Parse the data instead (`json.loads`, `ast.literal_eval`, a dispatch table).",
        regulations=_REGS,
        keywords=("eval", "exec", "function", "vm.", "settimeout", "setinterval", "compile"),
        check=_check_eval,
        examples=(
            "calc/rules.py::result = eval(request.args[\"expr\"])",
            "web/calc.js::const fn = new Function(\"x\", body);",
            "calc/rules.py::exec(rule_source, namespace)",
        ),
        counterexamples=(
            "calc/rules.py::value = ast.literal_eval(text)",
            "ml/train.py::model.eval()",
            "calc/rules.py::result = eval(\"1 + 2\")",
        ),
    ),
    Rule(
        id="INJ-004",
        category="injection",
        severity="critical",
        message="Untrusted data is deserialized with a format that can run code (pickle, yaml.load without a safe "
        "loader, Java/.NET native serialization, polymorphic typing). Use JSON or `yaml.safe_load`, or sign and "
        "verify the payload before loading it.",
        regulations=_REGS,
        keywords=("pickle", "marshal", "shelve", "yaml", "objectinputstream", "xmldecoder", "defaulttyping", "formatter",
                  "serializer", "typenamehandling", "unserialize", "torch.load", "joblib", "read_pickle", "fromxml",
                  "dill", "jsonpickle"),
        check=_check_deserialize,
        examples=(
            "kiosk/session.py::state = pickle.loads(base64.b64decode(blob))",
            "tools/cfg.py::config = yaml.load(fh)",
            "src/Import.java::ObjectInputStream in = new ObjectInputStream(request.getInputStream());",
            "Api/Import.cs::var obj = new BinaryFormatter().Deserialize(stream);",
            "Api/Json.cs::settings.TypeNameHandling = TypeNameHandling.All;",
        ),
        counterexamples=(
            "outreach/cache.py::CACHE_PATH = \"/var/lib/outreach/patients.db\"\nwith shelve.open(CACHE_PATH) as db:\n    db[key] = rows",
            "tools/cfg.py::config = yaml.safe_load(fh)",
            "tools/cfg.py::config = yaml.load(fh, Loader=yaml.SafeLoader)",
            "kiosk/session.py::state = json.loads(blob)",
        ),
    ),
    Rule(
        id="INJ-005",
        category="injection",
        severity="critical",
        message="A template is compiled from request data or a built string (server-side template injection). "
        "Render a fixed template and pass the values as context variables.",
        regulations=_REGS,
        keywords=("template", "from_string", "compile", "render", "velocity", "parseexpression"),
        pattern=_SSTI,
        examples=(
            "portal/views.py::return render_template_string(f\"<h1>Hello {name}</h1>\")",
            "portal/views.py::html = Template(request.form[\"body\"]).render(patient=p)",
            "portal/views.py::return render_template_string(data[\"template\"], **data)",
            "web/mail.js::const tpl = Handlebars.compile(req.body.template);",
            "letters/preview.py::return render_template_string(request.args.get(\"template\", \"\"))",
            "letters/views.py::    return render_template_string(\"<html><body>\" + body + \"</body></html>\")",
        ),
        counterexamples=(
            "portal/views.py::return render_template(\"hello.html\", name=name)",
            "portal/views.py::return render_template_string(\"<h1>Hello {{ name }}</h1>\", name=name)",
        ),
    ),
    Rule(
        id="INJ-006",
        category="injection",
        severity="high",
        message="An LDAP filter, XPath expression or MongoDB `$where` clause is built from a value. Escape it with "
        "the library's encoder or use the query language's parameters.",
        regulations=_REGS,
        keywords=("(", "$where"),
        check=_check_ldap_xpath,
        examples=(
            "auth/ldap.py::conn.search(BASE_DN, f\"(&(objectClass=person)(uid={username}))\")",
            "src/Dir.java::String filter = \"(sAMAccountName=\" + user + \")\";",
            "svc/xml.js::const node = xpath.select(\"//patient[@mrn='\" + mrn + \"']\", doc);",
            "ccd/CcdReader.java::String expr = \"//observation[code/@code='\" + loincCode + \"']/value\";\n"
            "return (NodeList) xpath.evaluate(expr, ccd, XPathConstants.NODESET);",
        ),
        counterexamples=(
            "auth/ldap.py::conn.search(BASE_DN, \"(&(objectClass=person)(uid=%s))\", escape_filter_chars(username))",
            "svc/xml.js::const node = xpath.select(\"//patient[@active='true']\", doc);",
            "ccd/CcdReader.java::String label = \"//observation[code/@code='\" + loincCode + \"']/value\";\nlog.debug(label);",
        ),
    ),
)
