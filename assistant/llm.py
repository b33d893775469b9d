"""The optional LLM path: a LangChain chat model from `GITOPS_HEALTH_LLM`, and a `draft` that never fails.

AI drafts, rules decide: a model may only word prose (a commit subject and
body, a summary) that a deterministic draft already covers. So `draft` takes
that deterministic text as its fallback and returns it on any timeout, error
or empty answer, and every byte sent to a provider first goes through
`assistant.redact.redact`. Provider SDKs are optional extras imported only
when asked for, so `review` and the hooks never pay for them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from assistant.redact import redact

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from assistant.diffs import FileDiff

__all__ = [
    "LLMConfigError", "PROVIDERS", "chat_model_from_env", "draft", "mask_code", "mask_text", "masked_excerpt",
    "parse_spec", "provider_name", "spec_from_environment",
]

ENV_VAR = "GITOPS_HEALTH_LLM"
DEFAULT_TIMEOUT_S = 20.0
_PROVIDER_KEY = "gitops_health_provider"  # in the model's metadata: which of PROVIDERS built it


class LLMConfigError(ValueError):
    """`GITOPS_HEALTH_LLM` names a provider we do not know, a model is missing, or its extra is not installed."""


def _openai(model: str, timeout_s: float) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    base_url = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if not base_url:
            raise LLMConfigError(
                f"{ENV_VAR}=openai:{model} needs OPENAI_API_KEY in the environment "
                "(or OPENAI_BASE_URL pointing at an OpenAI-compatible server that needs no key)"
            )
        api_key = "unused"  # local OpenAI-compatible servers (vLLM, llama.cpp) ignore the key
    return ChatOpenAI(
        model=model, base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0, temperature=0
    )


def _azure_openai(deployment: str, timeout_s: float) -> BaseChatModel:
    from langchain_openai import AzureChatOpenAI

    missing = [v for v in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY") if not os.environ.get(v)]
    if missing:
        raise LLMConfigError(f"{ENV_VAR}=azure-openai:{deployment} needs {' and '.join(missing)} in the environment")
    return AzureChatOpenAI(
        azure_deployment=deployment,
        api_version=os.environ.get("OPENAI_API_VERSION", "2024-06-01"),
        timeout=timeout_s,
        max_retries=0,
        temperature=0,
    )


def _ollama(model: str, timeout_s: float) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    host = os.environ.get("OLLAMA_HOST")
    if host and not host.startswith(("http://", "https://")):
        host = "http://" + host
    return ChatOllama(model=model, base_url=host, temperature=0, client_kwargs={"timeout": timeout_s})


def _anthropic(model: str, timeout_s: float) -> BaseChatModel:
    from langchain_anthropic import ChatAnthropic

    if not os.environ.get("ANTHROPIC_API_KEY"):
        raise LLMConfigError(f"{ENV_VAR}=anthropic:{model} needs ANTHROPIC_API_KEY in the environment")
    return ChatAnthropic(model=model, timeout=timeout_s, max_retries=0, temperature=0)


def _google(model: str, timeout_s: float) -> BaseChatModel:
    from langchain_google_genai import ChatGoogleGenerativeAI

    if not (os.environ.get("GOOGLE_API_KEY") or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")):
        raise LLMConfigError(
            f"{ENV_VAR}=google:{model} needs GOOGLE_API_KEY (or GOOGLE_APPLICATION_CREDENTIALS) in the environment"
        )
    return ChatGoogleGenerativeAI(model=model, timeout=timeout_s, max_retries=0, temperature=0)


# provider -> (factory, the pyproject extra that installs its SDK)
PROVIDERS: dict[str, tuple[Callable[[str, float], BaseChatModel], str]] = {
    "openai": (_openai, "openai"),
    "azure-openai": (_azure_openai, "azure-openai"),
    "ollama": (_ollama, "ollama"),
    "anthropic": (_anthropic, "anthropic"),
    "google": (_google, "google"),
}


def parse_spec(spec: str) -> tuple[str, str] | None:
    """`openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini"); `none` or empty -> None; anything else -> LLMConfigError."""
    spec = spec.strip()
    if not spec or spec.lower() == "none":
        return None
    provider, sep, model = spec.partition(":")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        known = ", ".join(["none", *(f"{p}:<model>" for p in PROVIDERS)])
        raise LLMConfigError(f"{ENV_VAR}={spec!r}: unknown provider {provider!r}; use one of {known}")
    if not sep or not model.strip():
        raise LLMConfigError(f"{ENV_VAR}={spec!r}: name the model after the provider, e.g. {provider}:<model>")
    return provider, model.strip()


def spec_from_environment() -> str:
    value = os.environ.get(ENV_VAR)
    if value is None:
        try:
            from dotenv import dotenv_values

            value = dotenv_values(".env").get(ENV_VAR)
        except OSError:
            value = None
    return value or "none"


def chat_model_from_env(spec: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> BaseChatModel | None:
    """The chat model `spec` (default: `$GITOPS_HEALTH_LLM`, then `.env`) names, or None for `none`.

    Raises LLMConfigError for an unknown provider, a missing model name or
    credential, or a provider whose optional extra is not installed (naming
    the `pip install 'gitops-health[extra]'` that fixes it).
    """
    parsed = parse_spec(spec if spec is not None else spec_from_environment())
    if parsed is None:
        return None
    provider, model = parsed
    factory, extra = PROVIDERS[provider]
    try:
        chat_model = factory(model, timeout_s)
    except ImportError as exc:
        raise LLMConfigError(
            f"{ENV_VAR}={provider}:{model} needs the {extra!r} extra, which is not installed "
            f"({exc.name or exc}); install it with: pip install 'gitops-health[{extra}]'"
        ) from None
    chat_model.metadata = {**(chat_model.metadata or {}), _PROVIDER_KEY: provider}
    return chat_model


def provider_name(model: Any) -> str:
    """Who drafted a text, for the record: `openai`, `ollama`... as `GITOPS_HEALTH_LLM` named it.

    A model built elsewhere (a test's fake model) is named by LangChain's
    own provider label, or its type.
    """
    name = (getattr(model, "metadata", None) or {}).get(_PROVIDER_KEY)
    if not name:
        try:
            name = model._get_ls_params().get("ls_provider")
        except Exception:  # noqa: BLE001 - a label, never worth failing for
            name = None
    label = str(name or getattr(model, "_llm_type", None) or type(model).__name__)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "unknown"


def _text_of(message: Any) -> str:
    content = getattr(message, "content", message)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return ""


def draft(
    model: BaseChatModel | None,
    prompt: str,
    fallback: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    system: str | None = None,
) -> str:
    """The model's answer to `prompt`, or `fallback` on no model, timeout, error or an empty answer. Never raises.

    The prompt (and system text) are redacted before they leave; the answer
    is redacted too, in case a model echoes something it should not.
    """
    if model is None:
        return fallback
    try:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages: list[Any] = []
        if system:
            messages.append(SystemMessage(content=redact(system)))
        messages.append(HumanMessage(content=redact(prompt)))
    except Exception:  # noqa: BLE001 - draft must never fail its caller
        return fallback

    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["text"] = _text_of(model.invoke(messages))
        except BaseException as exc:  # noqa: BLE001 - reported as a fallback, never raised
            result["error"] = exc

    # A daemon thread, not an executor: a hung provider must not keep the
    # process (a commit hook) alive after we have given up on it.
    worker = threading.Thread(target=call, name="gitops-health-llm", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive() or "error" in result:
        return fallback
    text = (result.get("text") or "").strip()
    return redact(text) if text else fallback


# --------------------------------------------------------------------------- what a prompt may show of a diff

_DATA_EXTENSIONS = (
    ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".xml", ".hl7", ".txt", ".dat", ".xlsx", ".xls", ".parquet",
    ".md", ".rst", ".adoc", ".html", ".htm", ".pdf", ".eml", ".log",
)
_DATE = re.compile(r"\b\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}\b")
_LONG_NUMBER = re.compile(r"\d{4,}")
_CAPITALISED_RUN = re.compile(r"\b[A-Z][a-z'\-]+(?:[ \t]+[A-Z][a-z'\-]+)+\b")
_COMMENT_START = ("#", "//", "/*", "*", "--", "<!--", ";")
_CONFIG_EXTENSIONS = (".yaml", ".yml", ".env", ".properties", ".ini", ".toml", ".cfg", ".conf")
_CONFIG_KEY = re.compile(r"\s*(?:-\s+)?(?:export\s+)?[\w.\-\"']+\s*[:=]")


def mask_code(line: str) -> str:
    """A line of code with nothing in it that could be a patient's: literals, comments, numbers, names gone.

    One pass with a quote state: string contents become `…`, and a comment
    (`#`, `//`, `--` outside a string) ends the line. What is left is the
    code's shape (identifiers, calls, operators), which is what a summary of
    the change needs.
    """
    stripped = line.lstrip()
    if not stripped or stripped.startswith(_COMMENT_START):
        return line[: len(line) - len(stripped)] + ("# …" if stripped else "")
    out: list[str] = []
    quote = ""
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                out.append("…" + c)
                quote = ""
            i += 1
            continue
        if c in "\"'`":
            quote = c
            out.append(c)
        elif c == "#" or (c in "/-" and line.startswith(c * 2, i)):
            break
        else:
            out.append(c)
        i += 1
    if quote:
        out.append("…" + quote)
    return mask_text("".join(out).rstrip())


def mask_text(text: str) -> str:
    """Dates, long numbers and runs of capitalised words (a name) out of text that is not code."""
    text = _DATE.sub("<date>", text)
    text = _LONG_NUMBER.sub("<n>", text)
    return _CAPITALISED_RUN.sub("<name>", text)


def mask_config(line: str) -> str:
    """A config line (`key: value`, `KEY=value`) with its value gone: keys say what changed, values may be data."""
    m = _CONFIG_KEY.match(line)
    if m is None:
        return mask_code(line)
    return m.group(0) + (" …" if line[m.end():].strip() else "")


def masked_excerpt(files: Iterable[FileDiff], budget: int = 3000) -> str:
    """The added lines of `files`, masked line by line, for a prompt: about `budget` characters at most.

    `redact` alone is not enough for a prompt: it redacts names, dates and
    record numbers only next to a label, and a fixture's `"Rosa Delgado"` or
    `lookup(90817263)` has none. So code keeps its shape (identifiers, calls,
    operators) and loses its literals, comments, long numbers, dates and runs
    of capitalised words; config files keep their keys; tests, docs and data
    files show no lines at all. `draft` redacts the prompt on top of this.
    """
    from assistant.filekinds import kind_of

    lines: list[str] = []
    for f in sorted(files, key=lambda f: f.path):
        lines.append(f"--- {f.path} ({f.status})")
        kind = kind_of(f.path)
        if f.binary or kind in ("test", "docs") or f.path.lower().endswith(_DATA_EXTENSIONS):
            lines.append(f"(lines of this {kind if kind in ('test', 'docs') else 'data'} file are not shown)")
            continue
        lower = f.path.lower()
        mask = mask_config if lower.endswith(_CONFIG_EXTENSIONS) or "/.env" in "/" + lower else mask_code
        for hunk in f.hunks:
            if hunk.header:
                lines.append(f"@@ {mask(hunk.header)}")
            for ln in hunk.lines:
                if ln.kind != "+":
                    continue
                masked = "+" + mask(ln.text[:200])
                budget -= len(masked)
                if budget < 0:
                    lines.append("... (truncated)")
                    return "\n".join(lines)
                lines.append(masked)
    return "\n".join(lines)
