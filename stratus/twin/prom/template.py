"""Alert templates: the Prometheus subset real rule files use, and Go's number formatting.

The counterpart of Prometheus' ``template/template.go``. :func:`expand_template` expands annotation and
label templates: ``{{ $labels.x }}``, ``{{ $value }}``, ``{{ $externalLabels.x }}``, ``{{ $externalURL }}``,
``.Labels``/``.Value``, pipelines and the functions ``humanize``, ``humanize1024``, ``humanizePercentage``,
``humanizeDuration``, ``printf``, ``toUpper``, ``toLower``, ``title``, ``index``. Missing labels expand to
``""``; an error yields Prometheus' ``<error expanding template: ...>`` text instead of raising.
:func:`format_alert_value` is Go's ``%e``-style shortest float, as ``/api/v1/alerts`` prints values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any


def format_alert_value(v: float) -> str:
    """Go ``strconv.FormatFloat(v, 'e', -1, 64)`` (shortest round-trip mantissa)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    for p in range(17):
        s = f"{v:.{p}e}"
        if float(s) == v:
            return s
    return f"{v:.17e}"



def _go_v(v: Any) -> str:
    """Go ``fmt`` ``%v`` of a value (floats: shortest digits, %e form if exp < -4 or >= 6, as Go's %g)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if not isinstance(v, float):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    r = repr(v)
    mant, _, exp = r.partition("e")
    digits = mant.replace("-", "").replace(".", "").lstrip("0").rstrip("0") or "0"
    x = int(exp) if exp else 0
    # decimal exponent of the leading digit
    if exp:
        lead = x
    else:
        ip, _, fp = mant.lstrip("-").partition(".")
        ip = ip.lstrip("0")
        lead = len(ip) - 1 if ip else -(len(fp) - len(fp.lstrip("0")) + 1)
    if lead < -4 or lead >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return ("-" if v < 0 else "") + f"{m}e{'-' if lead < 0 else '+'}{abs(lead):02d}"
    s = format(Decimal(r), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _go_g4(v: float, suffix: str = "") -> str:
    if math.isnan(v):
        return "NaN" + suffix
    if math.isinf(v):
        return ("+Inf" if v > 0 else "-Inf") + suffix
    return f"{v:.4g}" + suffix


def _humanize(v: float) -> str:
    v = float(v)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _go_g4(v, prefix)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _go_g4(v, prefix)


def _humanize1024(v: float) -> str:
    v = float(v)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _go_g4(v, prefix)


def _humanize_duration(v: float) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return _go_g4(v)
    if v == 0:
        return _go_g4(v, "s")
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        d = int(v)
        seconds, minutes, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{v:.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{v:.4g}{prefix}s"


_PRINTF_RE = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def rep(m: re.Match) -> str:
        flags, width, prec, verb = m.groups()
        if verb == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{verb}(MISSING)"
        spec = flags + width + (f".{prec}" if prec is not None else "")
        if verb in "fFeEgG":
            return format(float(a), spec + verb)
        if verb == "d":
            return format(int(float(a)), spec + "d")
        if verb == "q":
            return '"' + str(a).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if verb == "v":
            return format(_go_v(a), spec)
        return format(str(a), spec)

    return _PRINTF_RE.sub(rep, fmt)


def _to_float(x: Any) -> float:
    return float(x)


_FUNCS: dict[str, Callable[..., Any]] = {
    "humanize": lambda x: _humanize(_to_float(x)),
    "humanize1024": lambda x: _humanize1024(_to_float(x)),
    "humanizePercentage": lambda x: _go_g4(_to_float(x) * 100, "%"),
    "humanizeDuration": lambda x: _humanize_duration(_to_float(x)),
    "printf": _printf,
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "index": lambda m, k: (m or {}).get(k, ""),
}

_ACTION_RE = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')


class _TemplateError(Exception):
    pass


def _eval_term(tok: str, data: dict) -> Any:
    if tok.startswith('"'):
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith(("$", ".")):
        parts = tok.split(".")
        if tok.startswith("$"):
            root = parts[0][1:]
            rest = parts[1:]
            if root == "":
                root, rest = "", parts[1:]
            env = {
                "labels": data["labels"],
                "externalLabels": data["externalLabels"],
                "externalURL": data["externalURL"],
                "value": data["value"],
                "": data["dot"],
            }
            if root not in env:
                raise _TemplateError(f'undefined variable "${root}"')
            cur: Any = env[root]
        else:
            cur = data["dot"]
            rest = parts[1:]
        for p in rest:
            if p == "":
                continue
            if isinstance(cur, dict):
                cur = cur.get(p, "")
            else:
                raise _TemplateError(f"can't evaluate field {p}")
        return cur
    try:
        return float(tok) if any(c in tok for c in ".eE") else int(tok)
    except ValueError:
        pass
    if tok in ("true", "false"):
        return tok == "true"
    raise _TemplateError(f'function "{tok}" not defined')


def _eval_pipeline(expr: str, data: dict) -> Any:
    tokens = _TOKEN_RE.findall(expr)
    cmds: list[list[str]] = [[]]
    for t in tokens:
        if t == "|":
            cmds.append([])
        else:
            cmds[-1].append(t)
    val: Any = None
    first = True
    for cmd in cmds:
        if not cmd:
            raise _TemplateError("missing command")
        head, args = cmd[0], cmd[1:]
        if head in _FUNCS:
            argv = [_eval_term(a, data) for a in args]
            if not first:
                argv.append(val)
            try:
                val = _FUNCS[head](*argv)
            except (TypeError, ValueError) as e:
                raise _TemplateError(f"error calling {head}: {e}") from None
        else:
            if args or not first:
                raise _TemplateError(f'function "{head}" not defined')
            val = _eval_term(head, data)
        first = False
    return val


def expand_template(
    text: str,
    labels: dict[str, str],
    value: float,
    external_labels: dict[str, str] | None = None,
    external_url: str = "",
    name: str = "",
) -> str:
    """Expand a Prometheus alert template (subset, see module docstring)."""
    if "{{" not in text:
        return text
    data = {
        "labels": dict(labels),
        "externalLabels": dict(external_labels or {}),
        "externalURL": external_url,
        "value": float(value),
    }
    data["dot"] = {"Labels": data["labels"], "ExternalLabels": data["externalLabels"],
                   "ExternalURL": external_url, "Value": data["value"]}
    out: list[str] = []
    pos = 0
    try:
        for m in _ACTION_RE.finditer(text):
            lit = text[pos : m.start()]
            if m.group(1):
                lit = lit.rstrip()
            out.append(lit)
            body = m.group(2)
            if body.startswith("/*"):
                pass
            else:
                v = _eval_pipeline(body, data)
                out.append(_go_v(v) if not isinstance(v, dict) else "map[" + " ".join(
                    f"{k}:{x}" for k, x in sorted(v.items())) + "]")
            pos = m.end()
            if m.group(3):
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
        out.append(text[pos:])
    except _TemplateError as e:
        return f"<error expanding template: template: __alert_{name}: {e}>"
    return "".join(out)
