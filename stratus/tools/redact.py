"""Redaction: secrets never leave STRATUS for a model or a report.

Applied to every tool result the LLM sees: Secret data, env values whose names look like credentials,
bearer tokens, API keys, JWTs and passwords embedded in URLs or log lines.
"""

from __future__ import annotations

import copy
import re
from typing import Any

MASK = "[REDACTED]"
CREDENTIAL_NAME = re.compile(r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|private[_-]?key|credential|auth)",
                             re.IGNORECASE)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"(?i)\b(gh[pousr]_[A-Za-z0-9]{20,})"), MASK),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@"), r"\1" + MASK + "@"),
    (re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"), r"\1" + MASK),
    (re.compile(r"(?i)(\"(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key)\"\s*:\s*)\"[^\"]*\""),
     r'\1"' + MASK + '"'),
    (re.compile(r"(?i)((?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key)\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;}&]+)"),
     r"\1" + MASK),
    (re.compile(r"(?i)(-p\s+|--password[= ]\s*)(\S+)"), r"\1" + MASK),
]


def redact_text(text: str) -> str:
    for rx, repl in _PATTERNS:
        text = rx.sub(repl, text)
    return text


def redact_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a manifest with Secret data and credential-like env values masked."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(out.get(key), dict):
                out[key] = {k: MASK for k in out[key]}
    meta = out.get("metadata") or {}
    meta.pop("managedFields", None)
    ann = meta.get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in ann:
        ann["kubectl.kubernetes.io/last-applied-configuration"] = "[omitted]"
    for k, v in list(ann.items()):
        ann[k] = redact_text(str(v))
    if out.get("kind") == "ConfigMap" and isinstance(out.get("data"), dict):
        out["data"] = {k: MASK if CREDENTIAL_NAME.search(k) else redact_text(str(v)) for k, v in out["data"].items()}
    _redact_env(out)
    return out


def _redact_env(node: Any) -> None:
    if isinstance(node, dict):
        for key, val in node.items():
            if key in ("args", "command") and isinstance(val, list):
                node[key] = [redact_text(str(a)) for a in val]
            elif key == "env" and isinstance(val, list):
                for e in val:
                    if isinstance(e, dict) and "value" in e and CREDENTIAL_NAME.search(str(e.get("name", ""))):
                        e["value"] = MASK
                    elif isinstance(e, dict) and isinstance(e.get("value"), str):
                        e["value"] = redact_text(e["value"])
            else:
                _redact_env(val)
    elif isinstance(node, list):
        for item in node:
            _redact_env(item)
