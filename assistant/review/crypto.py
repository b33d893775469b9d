"""Weak cryptography rules: broken ciphers and modes, static IVs, short RSA keys,
MD5/SHA-1 or fast unsalted hashes where security depends on them, and
non-cryptographic random for secrets.

Whether a hash or a random number matters depends on its purpose, which no
single line shows: `hashlib.md5(...)` is fine for a cache key and fatal for a
password or a patient pseudonym. The purpose rules (CRY-001, CRY-005) look at
the hunk lines around the call -- and the function name in the hunk header --
for words of security (password, token, signature, salt, session, otp) or PHI
(the vocabulary), and for words of harmless use (cache, checksum, etag,
jitter, sample). Test files are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import re2

from assistant.diffs import DiffLine
from assistant.review._structure import is_comment
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.lexing import chains, mask

_REGS = ("HIPAA 164.312(a)(2)(iv)", "HIPAA 164.312(e)(2)(ii)")

_WEAK_HASH_RE = re2.compile(
    r"(?i)(?:hashlib\s*\.\s*(?:md5|sha1|new\s*\(\s*[\"'](?:md5|sha1)[\"'])|\bMD5\s*\.\s*(?:Create|new|HashData)|"
    r"\bSHA1\s*\.\s*(?:Create|new|HashData)|\bSHA1Managed|\bMD5CryptoServiceProvider|\bSHA1CryptoServiceProvider|"
    r"getInstance\s*\(\s*\"(?:MD5|SHA-?1|MD2|MD4)\"|createHash\s*\(\s*[\"'](?:md5|sha1)[\"']|"
    r"\bmd5\s*\.\s*(?:New|Sum)\s*\(|\bsha1\s*\.\s*(?:New|Sum)\s*\(|DigestUtils\s*\.\s*(?:md5|sha1|sha)\w*\s*\(|"
    r"Hashing\s*\.\s*(?:md5|sha1)\s*\(|\b(?:MD5|SHA1)\s*\(|HASHBYTES\s*\(\s*'(?:MD5|SHA1|MD4|MD2)'|"
    r"\bmd5\s*\(|\bsha1\s*\(|crypto\s*\.\s*(?:MD5|SHA1)\b|HashAlgorithmName\s*\.\s*(?:MD5|SHA1)|"
    r"hashes\s*\.\s*(?:MD5|SHA1)\s*\(|\bDigest::(?:MD5|SHA1))"
)
_SECURITY_WORDS_RE = re2.compile(
    r"(?i)(passw|passwd|pwd|passphrase|secret|token|signature|\bsign\w*|verify_sig|hmac|salt|credential|"
    r"session|otp|\bpin\b|api_?key|auth|login|nonce|pseudonym|anonymi|deidentif|de_identif|encrypt|cipher|"
    r"integrity|tamper|certificate|\bkey\b|_key\b|reset|invite|verification|csrf|cookie|nonce)"
)
_HARMLESS_RE = re2.compile(
    r"(?i)(cache|checksum|etag|e_tag|fingerprint|dedup|content[_-]?(?:hash|md5)|file[_-]?hash|shard|bucket|partition|"
    r"usedforsecurity\s*=\s*False|non[_-]?crypto|not (?:for|used for) security|jitter|backoff|sample|sampling|"
    r"shuffle|color|colour|avatar|placeholder|test|mock|fixture|seed\b|simulat|demo|animation|retry|delay|"
    r"load[_-]?balanc|round[_-]?robin|probability|rollout|a/b|experiment|canary)"
)


_FUNC_DEF_RE = re2.compile(
    r"(?:^\s*(?:async\s+)?def\s+(\w+)|^\s*func\s+(?:\([^)]*\)\s*)?(\w+)|\bfunction\s+(\w+)|"
    r"^\s*(?:export\s+)?(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?\(|"
    r"^\s*(?:(?:public|private|protected|internal|static|final|async|override|virtual|synchronized)\s+)+[\w<>\[\],. ]+\s+(\w+)\s*\()"
)


def function_name(ctx: FileContext, ln: DiffLine) -> str:
    """Name of the function around `ln`: the nearest definition above it in the hunk, else the hunk header's."""
    hunk = ctx.hunk_of(ln.new_no or 0)
    if hunk is not None:
        post = ctx.post_lines(hunk)
        idx = next((k for k, x in enumerate(post) if x is ln), None)
        if idx is not None:
            for k in range(idx, -1, -1):
                m = _FUNC_DEF_RE.search(post[k].text)
                if m:
                    return next(g for g in m.groups() if g)
    m = _FUNC_DEF_RE.search(ctx.enclosing_header(ln.new_no or 0).strip())
    return next((g for g in m.groups() if g), "") if m else ""


def _same_function_window(ctx: FileContext, ln: DiffLine, before: int, after: int) -> str:
    """Lines around `ln` that belong to the same function (stopping at another definition)."""
    around = ctx.neighbours(ln.new_no or 0, before, after)
    idx = next((k for k, x in enumerate(around) if x is ln), 0)
    lo = idx
    while lo > 0 and not _FUNC_DEF_RE.search(around[lo].text):
        lo -= 1
    hi = idx
    while hi + 1 < len(around) and not _FUNC_DEF_RE.search(around[hi + 1].text):
        hi += 1
    return "\n".join(x.text for x in around[lo: hi + 1])


def _window(ctx: FileContext, ln: DiffLine, before: int = 4, after: int = 4) -> str:
    around = ctx.neighbours(ln.new_no or 0, before, after)
    return "\n".join(x.text for x in around) + "\n" + ctx.enclosing_header(ln.new_no or 0)


def _phi_in(ctx: FileContext, text: str) -> bool:
    m = mask(text)
    for ch in chains(m.masked):
        what = ctx.vocabulary.phi_in_chain(ch.segments)
        if what is not None and what != "patient record":
            return True
    return False


_HASHED_SECRET_RE = re2.compile(r"(?i)(?:api_?key|apikey|passw|passphrase|secret|token|credential)")


def _check_weak_hash(ctx: FileContext) -> Iterator[Hit]:
    """MD5/SHA-1 where the surrounding code protects a secret or pseudonymises PHI."""
    if ctx.is_test:
        return
    for ln in ctx.scan(_WEAK_HASH_RE.pattern, lower=False):
        m = _WEAK_HASH_RE.search(ln.text)
        if m is None or "usedforsecurity=false" in ln.text.lower().replace(" ", ""):
            continue
        line_sec = _SECURITY_WORDS_RE.search(ln.text) is not None or _phi_in(ctx, ln.text)
        stem = ctx.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        # a module or class named for passwords/tokens (LegacyPasswords.java: `hash(raw)`) says the purpose
        window = _same_function_window(ctx, ln, 4, 4) + "\n" + function_name(ctx, ln) + "\n" + (
            stem if _PURPOSE_NAME_RE.search(stem) else "")
        window_sec = _SECURITY_WORDS_RE.search(window) is not None or _phi_in(ctx, window)
        # a fingerprint/cache key *of a secret* (`SHA1(apiKey)`, `md5(password)`) still protects that secret
        of_secret = _HASHED_SECRET_RE.search(ln.text[m.end():]) is not None
        harmless = (_HARMLESS_RE.search(ln.text) is not None and not of_secret) or (
            _HARMLESS_RE.search(window) is not None and not line_sec
        )
        if (line_sec or window_sec) and not harmless:
            yield Hit(ln.new_no or 1)


_BROKEN_CIPHER = (
    r"(?:getInstance\s*\(\s*\"(?:DES|DESede|TripleDES|3DES|RC4|ARCFOUR|RC2|Blowfish)(?:/[^\"\n]*)?\"|"
    r"getInstance\s*\(\s*\"AES\"\s*[,)]|getInstance\s*\(\s*\"[A-Za-z0-9]+/ECB/|"
    r"\b(?:DES|DES3|ARC4|ARC2|Blowfish|CAST)\s*\.\s*new\s*\(|\bAES\s*\.\s*MODE_ECB\b|\bmodes\s*\.\s*ECB\s*\(|"
    r"algorithms\s*\.\s*(?:TripleDES|ARC4|Blowfish|CAST5|IDEA|SEED)\s*\(|"
    r"\bcreate(?:Dec|C)ipher\s*\(|create(?:De)?[Cc]ipher(?:iv)?\s*\(\s*[\"'](?:des[\w-]*|rc4[\w-]*|rc2[\w-]*|bf[\w-]*|blowfish|aes-\d+-ecb|id-aes\d+-ecb)[\"']|"
    r"\b(?:DES|TripleDES|RC2)\s*\.\s*Create\s*\(|\bnew\s+(?:DES|TripleDES|RC2)CryptoServiceProvider\b|"
    r"CipherMode\s*\.\s*ECB\b|\bdes\s*\.\s*New(?:TripleDES)?Cipher\s*\(|\brc4\s*\.\s*NewCipher\s*\(|"
    r"\bcipher\s*\.\s*NewECB|\bECB(?:Encrypter|Decrypter)\b|\"(?:des|des3|rc4)-?(?:cbc|ecb)?\"\s*,\s*(?:key|secret)|"
    r"ssl_ciphers\s*[:=].*(?:RC4|3DES|DES-CBC|NULL|EXPORT)|"
    r"\bENCRYPTBYPASSPHRASE\s*\(|ENCRYPTION\s+BY\s+PASSWORD|ALGORITHM\s*=\s*(?:DES|TRIPLE_DES|RC4|RC2|DESX))"
)

_IV_ASSIGN_RE = re2.compile(
    r"(?i)\b(\w*(?:iv|nonce|initialization_?vector|salt))\b\s*(?::\s*[\w\[\]]+\s*)?(?::=|=)\s*(.+)$"
)
_IV_CONST_RE = re2.compile(
    r"(?i)^(?:new\s+byte\s*\[\s*\d*\s*\]\s*(?:;|$|\{\s*(?:0\s*,?\s*)*\})|b?[\"'][^\"'{}]*[\"']\s*(?:\*\s*\d+)?\s*[;)]*$|"
    r"bytes\s*\(\s*\d+\s*\)|bytearray\s*\(\s*\d+\s*\)|Buffer\s*\.\s*alloc\s*\(\s*\d+\s*(?:,\s*(?:0x)?0+\s*)?\)|"
    r"Buffer\s*\.\s*from\s*\(\s*[\"'][^\"']*[\"']|new\s+Uint8Array\s*\(\s*\d+\s*\)|make\s*\(\s*\[\]byte\s*,\s*[\w.]+\s*\)|"
    r"\[\]byte\s*\(\s*\"[^\"]*\"\s*\)|\[\]byte\s*\{|\"[^\"]*\"\s*\.\s*getBytes|Encoding\s*\.\s*\w+\s*\.\s*GetBytes\s*\(\s*\"|"
    r"\[\s*0\s*\]\s*\*\s*\d+|b\"\\x00\"|\d+\s*$|\{\s*0)"
)
_IV_INLINE_RE = re2.compile(
    r"(?:new\s+IvParameterSpec\s*\(\s*(?:new\s+byte\s*\[|\"[^\"]*\"\s*\.\s*getBytes|[A-Z_]{2,}\b)|"
    r"new\s+GCMParameterSpec\s*\(\s*\d+\s*,\s*new\s+byte\s*\[|"
    r"modes\s*\.\s*(?:CBC|GCM|CTR|CFB|OFB)\s*\(\s*(?:b[\"']|bytes\s*\(\s*\d|b\"\\x00\"|[A-Z_]{2,}\s*\))|"
    r"\bIV\s*=\s*new\s+byte\s*\[|\.IV\s*=\s*(?:new\s+byte|Encoding|[A-Z_]{2,}\s*;)|"
    r"createCipheriv\s*\([^,]+,[^,]+,\s*(?:Buffer\s*\.\s*alloc\s*\(\s*\d+\s*(?:,\s*(?:0x)?0+\s*)?\)|[\"']|Buffer\s*\.\s*from\s*\(\s*[\"']|[A-Z_]{2,}\s*\))|"
    r"\biv\s*=\s*b?[\"'][^\"']+[\"']|"
    r"\bcipher\s*\.\s*New(?:CBC|CFB|OFB)(?:En|De)crypter\s*\(\s*\w+\s*,\s*make\s*\(|\bcipher\s*\.\s*NewCTR\s*\(\s*\w+\s*,\s*make\s*\()"
)
_IV_CANDIDATE = (
    r"(?i:\b\w*(?:iv|nonce|initialization_?vector|salt)\b\s*(?::\s*[\w\[\]]+\s*)?(?::=|=))|(?:"
    + _IV_INLINE_RE.pattern + ")"
)
_RANDOM_FILL_RE = re2.compile(
    r"(?i)(urandom|random|rand\.|getrandom|secrets\.|nextBytes|GetBytes\s*\(\s*\w|GetNonZeroBytes|GenerateIV|"
    r"ReadFull|rand\.Read|randomBytes|getRandomValues|get_random_bytes|token_bytes|RandomNumberGenerator|Fill\s*\()"
)


def _check_static_iv(ctx: FileContext) -> Iterator[Hit]:
    """A zero or constant IV/nonce (not filled from a CSPRNG in the next lines): CRY-003."""
    if ctx.is_test:
        return
    for ln in ctx.scan(_IV_CANDIDATE, lower=False):
        text = ln.text
        hit = _IV_INLINE_RE.search(text) is not None
        if not hit:
            m = _IV_ASSIGN_RE.search(text)
            if m is None:
                continue
            name = m.group(1).lower()
            if name.endswith("salt") and "password" not in _window(ctx, ln).lower():
                continue
            value = m.group(2).strip()
            if not _IV_CONST_RE.search(value) or _RANDOM_FILL_RE.search(value):
                continue
            if name.endswith(("_size", "len", "length")):
                continue
            hit = True
        if hit:
            following = "\n".join(x.text for x in ctx.neighbours(ln.new_no or 0, 0, 3)[1:])
            if _RANDOM_FILL_RE.search(following) or _RANDOM_FILL_RE.search(text.split("=", 1)[-1]):
                continue
            # `IV = new IvParameterSpec(new byte[16])` builds the cipher's IV object itself: that line is the flaw;
            # a bare constant (`ZERO_IV = bytes(16)`) becomes one where a cipher takes it
            inline = _IV_INLINE_RE.search(text) is not None
            yield Hit((None if inline else _static_iv_anchor(ctx, ln)) or ln.new_no or 1)


# A module-level IV constant (`ZERO_IV = bytes(16)`, `static final byte[] IV = ...`) is reported where a cipher first
# encrypts with it: that statement is the one a reviewer reads as "encrypts with a static IV". A local variable
# (`iv := make([]byte, 16)` a few lines above its use) stays where it is made.
_CONST_DECL_RE = re2.compile(r"^(?:[A-Za-z_]\w*\s*(?::\s*[\w\[\]]+\s*)?=|(?:export\s+)?const\s|\s*(?:(?:private|public|internal|protected)\s+)?(?:static\s+)?(?:final|readonly|const)\s)")
_CIPHER_USE_RE = re2.compile(
    r"(?i)\bAES\s*\.\s*new\s*\(|\bCipher\b|\bcipher\b|IvParameterSpec|GCMParameterSpec|createCipheriv|createDecipheriv|"
    r"\bmodes\s*\.|Encrypter\s*\(|Decrypter\s*\(|CreateEncryptor|CreateDecryptor|\.IV\s*="
)


def _static_iv_anchor(ctx: FileContext, ln: DiffLine) -> int | None:
    m = _IV_ASSIGN_RE.search(ln.text)
    if m is None or _CONST_DECL_RE.search(ln.text) is None:
        return None
    name = m.group(1)
    word = re2.compile(r"\b" + re2.escape(name) + r"\b")
    for use in ctx.added:
        if use is ln or use.new_no is None or abs(use.new_no - (ln.new_no or 0)) <= 2:
            continue
        if word.search(use.text) and _CIPHER_USE_RE.search(use.text) and not is_comment(use.text):
            return use.new_no
    return None


_RSA_CONTEXT_RE = re2.compile(r"(?i)(rsa|keypairgenerator|key_size|keysize|modulus|rsa_bits|generate_private_key|genrsa)")
_SMALL_KEY_RE = re2.compile(
    r"(?i)(?:key_?size\s*[=:]\s*|modulusLength\s*:\s*|rsa_bits\s*=\s*|initialize\s*\(\s*|GenerateKey\s*\(\s*[\w.]+\s*,\s*|"
    r"RSA\s*\.\s*generate\s*\(\s*|RSACryptoServiceProvider\s*\(\s*|RSA\s*\.\s*Create\s*\(\s*|genrsa\s+(?:-\w+\s+)*|"
    r"KeySize\s*=\s*|bits\s*[=:]\s*)(256|384|512|768|1024|1536)\b"
)


def _check_rsa(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    for ln in ctx.scan(_SMALL_KEY_RE.pattern, lower=False):
        m = _SMALL_KEY_RE.search(ln.text)
        if m is None:
            continue
        if _RSA_CONTEXT_RE.search(ln.text) or _RSA_CONTEXT_RE.search(_window(ctx, ln, 4, 1)):
            if re2.search(r"(?i)\b(ec|ecdsa|aes|hmac|ed25519|x25519|secp)\b", ln.text):
                continue
            yield Hit(ln.new_no or 1)


_WEAK_RANDOM_RE = re2.compile(
    r"(?:\brandom\s*\.\s*(?:choice|choices|randint|random|randrange|getrandbits|sample|uniform|randbytes)\s*\(|"
    r"\bMath\s*\.\s*random\s*\(|\bnew\s+Random\s*\(|\bRandom\s*\.\s*Shared\b|\bThreadLocalRandom\s*\.\s*current|"
    r"RandomStringUtils\s*\.\s*random\w*\s*\(|\bnew\s+java\s*\.\s*util\s*\.\s*Random\s*\(|"
    r"\brand\s*\.\s*(?:Intn|Int63n?|Int31n?|Uint32|Uint64|Float64|Float32|Perm|Seed|New\s*\(\s*rand\s*\.\s*NewSource)\s*\(|"
    r"\bmt_rand\s*\(|\brand\s*\(\s*\)|\bsrand\s*\(|\buuid\s*\.\s*uuid1\s*\(|\b_\s*\.\s*random\s*\(|"
    r"\bfaker\b|\bRandom\s*\(\s*\)\s*\.\s*Next|\bRandom\s+_?\w+\s*=\s*new\s*\(\s*\)|"
    # a CSPRNG seeded with a constant repeats its output on every run (SecureRandom SHA1PRNG + setSeed(42L))
    r"\.\s*setSeed\s*\(\s*(?:0x)?[\dA-Fa-f_]+[lL]?\s*\))"
)
_RANDOM_PURPOSE_RE = re2.compile(
    r"(?i)(token|passw|pwd|secret|session|otp|one_time|onetime|\bpin\b|api_?key|nonce|salt|csrf|reset|invite|"
    r"verification|verify_code|auth|credential|\bkey\b|_key\b|Key\b|cookie|signup|magic_?link|coupon|voucher|"
    r"temp_?pass|activation|recovery|access_code|confirm|"
    r"(?:access|auth|login|verification|verify|confirm\w*|check_?in|pairing|invite|activation|one_?time|sms|mfa|"
    r"security|reset|unlock|door|enrol\w*)_?code)"
)


def _random_for_secret(ctx: FileContext, ln: DiffLine) -> bool:
    if _HARMLESS_RE.search(ln.text.replace("setSeed", "")):  # `setSeed(42L)` itself is not a harmless "seed" use
        return False
    target = ln.text.split("=", 1)[0] if "=" in ln.text else ""
    if target and _HARMLESS_RE.search(target):
        return False
    func = function_name(ctx, ln)
    if func and _HARMLESS_RE.search(func):
        return False
    window = _same_function_window(ctx, ln, 3, 3)
    stem = ctx.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    folder = ctx.path.rsplit("/", 2)[-2] if ctx.path.count("/") >= 1 else ""
    return bool(_RANDOM_PURPOSE_RE.search(ln.text) or _RANDOM_PURPOSE_RE.search(func) or _PURPOSE_NAME_RE.search(stem)
                or _PURPOSE_NAME_RE.search(folder) or (
        _RANDOM_PURPOSE_RE.search(window) and not _HARMLESS_RE.search(window)
    ))


# A generator kept in a field or variable (`static readonly Random Rng = new Random();`, `r := rand.New(...)`):
# the secret is made where it is drawn from (`Rng.Next(...)`), often far from the construction.
_GENERATOR_DECL_RE = re2.compile(
    r"\b([A-Za-z_]\w*)\s*(?::=|=)\s*(?:new\s+(?:java\s*\.\s*util\s*\.\s*)?Random\s*\(|rand\s*\.\s*New\s*\(|new\s*\(\s*\)\s*;)"
)
_DRAW_METHODS = r"\s*\.\s*(?:Next\w*|next\w*|Intn|Int\d*n?|Uint\d+|Float\d+|Perm|Read|ints|doubles|longs)\s*\("


def _check_weak_random(ctx: FileContext) -> Iterator[Hit]:
    """Non-cryptographic random where the value is a token, password, session id or key: CRY-005."""
    if ctx.is_test:
        return
    seen: set[int] = set()
    for ln in ctx.scan(_WEAK_RANDOM_RE.pattern, lower=False):
        m = _WEAK_RANDOM_RE.search(ln.text)
        if m is None:
            continue
        decl = _GENERATOR_DECL_RE.search(ln.text)
        draws: list[DiffLine] = []
        if decl is not None:
            draw_re = r"\b" + re2.escape(decl.group(1)) + _DRAW_METHODS
            draws = [d for d in ctx.scan(draw_re, lower=False) if d is not ln]
        # one weakness, one finding: a generator kept in a field is reported where a secret is drawn from it
        # (`_random.Next(...)` building the token), the statement a reviewer reads as the flaw; the declaration
        # only when no added line draws from it
        use = next((d for d in draws if _random_for_secret(ctx, d) and not _HARMLESS_RE.search(ln.text)), None)
        if use is not None:
            seen.add(use.new_no or 1)
            yield Hit(use.new_no or 1)
        elif _random_for_secret(ctx, ln):
            seen.add(ln.new_no or 1)
            yield Hit(ln.new_no or 1)
    if ctx.path.endswith(".go"):
        yield from _go_math_rand(ctx, seen)


# Go picks the generator by import: `rand.Read(b)` is a CSPRNG under "crypto/rand" and predictable under
# "math/rand", so swapping the import changes every draw in the file without touching those lines.
_GO_MATH_RAND_RE = re2.compile(r'(?:^|[\s(])(?:([A-Za-z_]\w*)\s+)?"math/rand(?:/v2)?"')


def _go_math_rand(ctx: FileContext, seen: set[int]) -> Iterator[Hit]:
    for imp in ctx.scan('"math/rand', lower=False):
        m = _GO_MATH_RAND_RE.search(imp.text)
        if m is None or m.group(1) == "_":
            continue
        alias = m.group(1) or "rand"
        draw_re = r"\b" + re2.escape(alias) + r"\s*\.\s*(?:Read|Int\w*|Uint\w*|Float\w*|Perm|N)\s*\("
        line = 0
        for d in ctx.scan(draw_re, added_only=False, lower=False):
            if d is not imp and _random_for_secret(ctx, d):
                line = (d.new_no or 1) if d.kind == "+" else (imp.new_no or 1)
                break
        else:
            # The draws lie outside the hunk: replacing "crypto/rand" by "math/rand" is a downgrade on its own
            # (unless a draw from a generator made with it, `rng.Intn(..)`, is reported already).
            removed = ctx.change_block(imp.new_no or 1)[0]
            if not seen and any('"crypto/rand"' in r.text for r in removed):
                line = imp.new_no or 1
        if line and all(abs(line - s) > 2 for s in seen):
            seen.add(line)
            yield Hit(line)


# A file named for one-time codes or tokens: every random number in it is a secret.
_PURPOSE_NAME_RE = re2.compile(r"(?i)(otp|one_?time|token|passw|session|reset|invite|verification|mfa|2fa|totp|pin_?code)")

_FAST_PASSWORD_HASH_RE = re2.compile(
    r"(?i)(?:hashlib\s*\.\s*(?:sha\d+|sha3_\d+|blake2\w)|sha\d+\s*\.\s*(?:Sum\d*|New)|SHA\d+\s*\.\s*(?:Create|HashData)|"
    r"getInstance\s*\(\s*\"SHA-?\d+\"|createHash\s*\(\s*[\"']sha\d+[\"']|DigestUtils\s*\.\s*sha\d+\w*|"
    r"Hashing\s*\.\s*sha\d+|HASHBYTES\s*\(\s*'SHA2_\d+')"
)
_PASSWORD_RE = re2.compile(r"(?i)(passw|passwd|\bpwd\b|passphrase|\bpin\b)")
_DISABLED_HASHING_RE = re2.compile(
    r"(?:NoOpPasswordEncoder|Md5PasswordEncoder|ShaPasswordEncoder|LdapShaPasswordEncoder|StandardPasswordEncoder|"
    r"MessageDigestPasswordEncoder|UnsaltedMD5PasswordHasher|UnsaltedSHA1PasswordHasher|MD5PasswordHasher|"
    r"SHA1PasswordHasher|CryptPasswordHasher|plaintext_password|PLAINTEXT|\{noop\}|"
    r"gensalt\s*\(\s*(?:rounds\s*=\s*)?[1-9]\s*\)|GenerateFromPassword\s*\([^,]+,\s*[1-9]\s*\)|"
    r"\bbcrypt\w*\s*\.\s*(?:hash|hashSync)\s*\([^,]+,\s*[1-9]\s*\)|\bgenSalt(?:Sync)?\s*\(\s*[1-9]\s*[,)]|"
    # `iterations=1000`, `ITERATIONS = 1_000` (a constant read by the KDF a few lines below), `"rounds": 4`
    r"(?i:iterations|rounds|cost|work_?factor|log_?rounds)[\"']?\s*[=:]\s*(?:[1-9](?:_?\d){0,3}|[1-9])\b|"
    r"\bPBEKeySpec\s*\([^,]+,[^,]+,\s*[1-9]\d{0,3}\s*[,)]|\bRfc2898DeriveBytes\s*\([^,]+,[^,]+,\s*[1-9]\d{0,3}\s*[,)]|"
    r"\bpbkdf2_hmac\s*\([^,]+,[^,]+,[^,]+,\s*[1-9]\d{0,3}\s*[,)]|\bpbkdf2Sync\s*\([^,]+,[^,]+,\s*[1-9]\d{0,3}\s*,|"
    r"\bpbkdf2\s*\.\s*Key\s*\([^,]+,[^,]+,\s*[1-9]\d{0,3}\s*,|\bBCryptPasswordEncoder\s*\(\s*[4-9]\s*\))"
)


# settings modules for the test run (`settings/test.py`, `test_settings.py`): a fast hasher there only speeds up tests
_TEST_SETTINGS_RE = re2.compile(r"(?i)(?:^|/)(?:settings[/_.])?(?:test|tests|testing|test_settings|settings_test|ci)\.(?:py|ya?ml|properties|json)$")


def _check_password_hashing(ctx: FileContext) -> Iterator[Hit]:
    """Passwords hashed with a fast unsalted hash, or password hashing disabled or weakened: CRY-006."""
    if ctx.is_test or _TEST_SETTINGS_RE.search(ctx.path):
        return
    for ln in ctx.scan(f"(?:{_FAST_PASSWORD_HASH_RE.pattern})|(?:{_DISABLED_HASHING_RE.pattern})", lower=False):
        text = ln.text
        if _FAST_PASSWORD_HASH_RE.search(text) and (
            _PASSWORD_RE.search(text) or _PASSWORD_RE.search(function_name(ctx, ln))
        ) and not re2.search(
            r"(?i)(pbkdf2|hmac|scrypt|bcrypt|argon)", text
        ):
            yield Hit(ln.new_no or 1, "A password is hashed with a fast general-purpose hash (no salt, no work "
                      "factor). Use a password hashing function: Argon2id, scrypt, bcrypt or PBKDF2 with a high "
                      "iteration count and a per-user salt.")
            continue
        m = _DISABLED_HASHING_RE.search(text)
        if m is None:
            continue
        token = m.group(0).lower()
        if token == "plaintext" and (
            re2.search(r"(?i)security\.protocol|PLAINTEXT://|listener|protocol", text)
            or not re2.search(r"(?i)passw|hasher|encoder|\bhash", _window(ctx, ln, 2, 2))
        ):
            continue  # a Kafka/listener protocol name, not a password stored in plaintext
        if token.startswith(("pbekeyspec", "rfc2898", "pbkdf2", "bcryptpasswordencoder", "bcrypt", "gensalt")):
            yield Hit(ln.new_no or 1, "Password hashing uses too few iterations (or too low a cost) to resist "
                      "offline guessing. Use >= 600,000 PBKDF2-SHA256 iterations, bcrypt cost >= 10, or Argon2id.")
            continue
        if token.startswith(("iterations", "rounds", "cost", "work", "log")):
            window = _window(ctx, ln, 3, 3).lower()
            if not any(w in window for w in ("pbkdf2", "bcrypt", "scrypt", "password", "hash", "kdf")):
                continue
            num = int(re2.search(r"(\d[\d_]*)\s*$", m.group(0)).group(1).replace("_", ""))  # type: ignore[union-attr]
            if token.startswith("iteration") and num >= 10000:
                continue
            if token.startswith(("rounds", "cost", "log")) and ("bcrypt" in window and num >= 10 or num >= 10000):
                continue
            if token.startswith(("rounds", "cost", "log", "work")) and "bcrypt" not in window and num >= 10:
                continue
        yield Hit(ln.new_no or 1)


RULES: tuple[Rule, ...] = (
    Rule(
        id="CRY-001",
        category="weak-crypto",
        severity="high",
        message="MD5/SHA-1 protects a password, signature, token or patient pseudonym here; both are broken for "
        "that. Use SHA-256+ in an HMAC with a secret key for pseudonyms and signatures, and Argon2id/bcrypt/scrypt "
        "for passwords.",
        regulations=_REGS,
        keywords=("md5", "sha1", "sha-1", "md2", "md4"),
        check=_check_weak_hash,
        examples=(
            "portal/passwords.py::def hash_password(password):\n    return hashlib.md5(password.encode()).hexdigest()",
            "Partners/Keys.cs::public string Fingerprint(string apiKey) => Convert.ToHexString(SHA1.HashData(Encoding.UTF8.GetBytes(apiKey)));",
            "src/LegacyPasswords.java::public String hash(String raw) throws Exception {\n    MessageDigest md = MessageDigest.getInstance(\"MD5\");\n    return hex(md.digest(raw.getBytes()));",
            "src/Extract.java::MessageDigest digest = MessageDigest.getInstance(\"MD5\");\nString pseudonym = hex(digest.digest(p.getSsn().getBytes()));",
            "api/sign.js::const signature = crypto.createHash('sha1').update(secret + body).digest('hex');",
        ),
        counterexamples=(
            "cache/keys.py::cache_key = hashlib.md5(json.dumps(params).encode()).hexdigest()",
            "files/etag.go::etag := fmt.Sprintf(\"%x\", md5.Sum(body))",
            "svc/x.py::h = hashlib.md5(data, usedforsecurity=False)",
            "tests/test_pw.py::assert hashlib.md5(password.encode()).hexdigest() == stored",
        ),
    ),
    Rule(
        id="CRY-002",
        category="weak-crypto",
        severity="high",
        message="A broken cipher or mode (DES, 3DES, RC4, RC2, Blowfish, ECB, or provider-default `AES` which is "
        "ECB). Use AES-GCM (or ChaCha20-Poly1305) with a random nonce per message.",
        regulations=_REGS,
        keywords=("createcipher(", "createdecipher(", "des", "rc4", "rc2", "arc4", "arc2", "blowfish", "ecb", "getinstance(\"aes\"", "cast", "ssl_ciphers",
                  "encryptbypassphrase", "encryption by password", "algorithm", "tripledes", "bf-", "idea", "seed"),
        pattern=_BROKEN_CIPHER,
        examples=(
            "lab/MessageCipher.java::Cipher cipher = Cipher.getInstance(\"DES/ECB/PKCS5Padding\");",
            "lab/Cipher.java::Cipher c = Cipher.getInstance(\"AES\");",
            "svc/enc.py::cipher = AES.new(key, AES.MODE_ECB)",
            "svc/enc.js::const c = crypto.createCipheriv('des-ede3-cbc', key, iv);",
            "Svc/Enc.cs::aes.Mode = CipherMode.ECB;",
            "pkg/enc.go::block, err := des.NewTripleDESCipher(key)",
        ),
        counterexamples=(
            "lab/MessageCipher.java::Cipher cipher = Cipher.getInstance(\"AES/GCM/NoPadding\");",
            "svc/enc.py::cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)",
            "svc/describe.py::description = \"Design notes\"",
        ),
    ),
    Rule(
        id="CRY-003",
        category="weak-crypto",
        severity="high",
        message="A static or all-zero IV/nonce: identical plaintexts give identical ciphertexts (and GCM nonce reuse "
        "breaks authentication). Generate a fresh random IV per message and store it with the ciphertext.",
        regulations=_REGS,
        keywords=("iv", "nonce", "vector", "crypter", "newctr", "alloc"),
        check=_check_static_iv,
        examples=(
            "Storage/DocumentEncryptor.cs::aes.IV = new byte[16];",
            "svc/Enc.java::IvParameterSpec iv = new IvParameterSpec(new byte[16]);",
            "svc/enc.py::iv = b\"\\x00\" * 16",
            "svc/enc.js::const cipher = crypto.createCipheriv('aes-256-cbc', key, Buffer.alloc(16));",
            "svc/enc.js::const iv = Buffer.alloc(16, 0);",
            "pkg/env.go::cipher.NewCBCEncrypter(block, make([]byte, des.BlockSize)).CryptBlocks(out, plain)",
            "billing/crypto/member_ids.py::ZERO_IV = bytes(16)\n\n\ndef seal(v):\n    cipher = AES.new(current_key(), AES.MODE_CBC, iv=ZERO_IV)\n    return cipher.encrypt(pad(v, 16))",
        ),
        counterexamples=(
            "Storage/Sealer.cs::var nonce = RandomNumberGenerator.GetBytes(12);",
            "pkg/enc.go::iv := make([]byte, aes.BlockSize)\nif _, err := io.ReadFull(rand.Reader, iv); err != nil {",
            "svc/enc.py::iv = os.urandom(16)",
            "Storage/DocumentEncryptor.cs::aes.GenerateIV();",
        ),
    ),
    Rule(
        id="CRY-004",
        category="weak-crypto",
        severity="high",
        message="An RSA key shorter than 2048 bits can be factored. Use at least 2048 bits (3072 for keys meant to "
        "last beyond 2030), or an elliptic-curve key.",
        regulations=_REGS,
        keywords=("512", "768", "1024", "1536", "256", "384"),
        check=_check_rsa,
        examples=(
            "svc/keys.py::key = rsa.generate_private_key(public_exponent=65537, key_size=1024)",
            "src/Keys.java::KeyPairGenerator kpg = KeyPairGenerator.getInstance(\"RSA\");\nkpg.initialize(1024);",
            "infra/tls.tf::  algorithm = \"RSA\"\n  rsa_bits  = 1024",
        ),
        counterexamples=(
            "svc/keys.py::key = rsa.generate_private_key(public_exponent=65537, key_size=3072)",
            "svc/buf.py::buf = bytearray(1024)",
        ),
    ),
    Rule(
        id="CRY-005",
        category="weak-crypto",
        severity="high",
        message="A non-cryptographic random generator makes a token, password, session id or key; its output is "
        "predictable. Use a CSPRNG: `secrets` (Python), `crypto.randomBytes`/`crypto.randomUUID` (Node), "
        "`SecureRandom` (Java), `RandomNumberGenerator` (C#), `crypto/rand` (Go).",
        regulations=_REGS,
        keywords=("random", "rand", "faker", "uuid1"),
        check=_check_weak_random,
        examples=(
            "portal/tokens/InviteTokens.java::    public static String nextInviteToken() throws Exception {\n        SecureRandom sr = SecureRandom.getInstance(\"SHA1PRNG\");\n        sr.setSeed(20251125L);\n        return Long.toHexString(sr.nextLong());\n    }",
            "src/Portal/Accounts/ResetTokenFactory.cs::    private readonly Random _random = new();\n    public string NewToken()\n    {\n        var sb = new StringBuilder();\n        for (var i = 0; i < 32; i++)\n            sb.Append(Alphabet[_random.Next(Alphabet.Length)]);\n        return sb.ToString();\n    }",
            "portal/reset.py::value = \"\".join(random.choice(string.ascii_letters) for _ in range(32))\nreturn ResetToken.objects.create(user=user, value=value)",
            "web/session.js::const sessionId = Math.random().toString(36).slice(2);",
            "pkg/otp.go::otp := fmt.Sprintf(\"%06d\", rand.Intn(1000000))",
            "Auth/Codes.cs::private static readonly Random Rng = new Random();\n\npublic string NewVerificationCode()\n{\n    return Rng.Next(0, 1_000_000).ToString(\"D6\");\n}",
            "portal/mfa/SmsCodeGenerator.java::private final Random random = new Random();\n\npublic String nextCode() {\n    return String.format(\"%06d\", random.nextInt(1_000_000));\n}",
            "internal/session/id.go::import (\n\t\"encoding/hex\"\n\t\"math/rand\"\n)\n\nfunc NewID() string {\n\tb := make([]byte, 16)\n\trand.Read(b)\n\treturn hex.EncodeToString(b)\n}",
        ),
        counterexamples=(
            "sim/Monte.java::    public static double simulateArrivals() {\n        Random r = new Random();\n        r.setSeed(42L);\n        return r.nextGaussian();\n    }",
            "svc/retry.js::const jitter = Math.floor(Math.random() * backoff * 0.2);",
            "svc/sample.py::if random.random() < SAMPLE_RATE:",
            "svc/token.py::token = secrets.token_urlsafe(32)",
            "Svc/Retry.cs::private static readonly Random Rng = new Random();\n\npublic TimeSpan Backoff(int attempt)\n{\n    return TimeSpan.FromMilliseconds(Rng.Next(0, 250));\n}",
            "internal/retry/backoff.go::import \"math/rand\"\n\nfunc Backoff(attempt int) time.Duration {\n\treturn time.Duration(rand.Intn(250)) * time.Millisecond\n}",
        ),
    ),
    Rule(
        id="CRY-006",
        category="weak-crypto",
        severity="high",
        message="Password hashing is disabled or weakened (fast unsalted hash, plaintext/no-op encoder, too few "
        "rounds). Use Argon2id, scrypt, bcrypt (cost >= 10) or PBKDF2 (>= 600,000 iterations for SHA-256).",
        regulations=_REGS,
        keywords=("sha", "hash", "encoder", "hasher", "noop", "plaintext", "salt", "iteration", "round", "cost",
                  "work", "blake"),
        check=_check_password_hashing,
        examples=(
            "portal/passwords.py::return hashlib.sha256(password.encode()).hexdigest()",
            "src/SecurityConfig.java::return NoOpPasswordEncoder.getInstance();",
            "portal/settings.py::PASSWORD_HASHERS = [\"django.contrib.auth.hashers.UnsaltedMD5PasswordHasher\"]",
            "portal/pw.py::hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4))",
            "services/auth/src/passwords.js::  return bcrypt.hash(pw, 4);",
            "services/auth/src/passwords.js::  const salt = await bcrypt.genSalt(5);",
            "portal/accounts/hashing.py::ITERATIONS = 1_000\n\n\ndef hash_password(password: str) -> str:",
        ),
        counterexamples=(
            "ehr/settings/test.py::PASSWORD_HASHERS = [\"django.contrib.auth.hashers.MD5PasswordHasher\"]  # test users only",
            "pharmacy/cache.py::digest = hashlib.sha256(json.dumps(params).encode()).hexdigest()",
            "portal/pw.py::digest = hashlib.pbkdf2_hmac(\"sha256\", password.encode(), salt, 600_000)",
            "portal/pw.py::hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12))",
            "src/main/resources/application.yml::      security.protocol: PLAINTEXT",
            "services/auth/src/passwords.js::  return bcrypt.hash(pw, 12);",
            "portal/accounts/hashing.py::ITERATIONS = 600_000\n\n\ndef hash_password(password: str) -> str:",
            "portal/export.py::BATCH_ROUNDS = 3\n\n\ndef export_batches(rows):",
        ),
    ),
)
