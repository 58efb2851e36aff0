"""Job analyzer: Jobs that failed (backoff limit, deadline), suspended Jobs and CronJobs, and CronJobs
whose schedule cannot be parsed or whose starting deadline is negative (they never run)."""

from __future__ import annotations

import re

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELD = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def schedule_error(schedule: str) -> str:
    """Why a standard five-field cron schedule (or macro) is invalid; empty when it is valid."""
    text = re.sub(r"^(CRON_)?TZ=\S+\s+", "", schedule.strip())
    if text in MACROS:
        return ""
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields, got {len(fields)}"
    for f, (lo, hi) in zip(fields, _RANGES, strict=True):
        if not _FIELD.match(f):
            return f"field {f!r} is not a cron expression"
        for n in re.findall(r"(?<![/\w])\d+", f):
            if not lo <= int(n) <= hi:
                return f"value {n} in {f!r} is outside {lo}-{hi}"
    return ""


@analyzer("jobs")
def jobs(v: View) -> list[Finding]:
    out = []
    for job in v.objects("Job"):
        name, spec, st = job["metadata"]["name"], job.get("spec") or {}, job.get("status") or {}
        owner = next((r["name"] for r in job["metadata"].get("ownerReferences") or [] if r.get("kind") == "CronJob"),
                     name)
        ref = f"Job/{name}"
        for cond in st.get("conditions") or []:
            if cond.get("type") == "Failed" and cond.get("status") == "True":
                out.append(finding("jobs", ref, f"Job {name} failed: {cond.get('reason')}: "
                                                f"{cond.get('message', '')[:200]}", owner, "JobFailed", "warning",
                                   [f"job:{name}:status.conditions"], reason=cond.get("reason"),
                                   failed=st.get("failed", 0)))
        if spec.get("suspend"):
            out.append(finding("jobs", ref, f"Job {name} is suspended", owner, "JobSuspended", "info",
                               [f"job:{name}:spec.suspend"]))
    for cj in v.objects("CronJob"):
        name, spec = cj["metadata"]["name"], cj.get("spec") or {}
        ref = f"CronJob/{name}"
        if spec.get("suspend"):
            out.append(finding("jobs", ref, f"CronJob {name} is suspended: no new runs are scheduled",
                               name, "CronJobSuspended", "info", [f"cronjob:{name}:spec.suspend"]))
            continue
        why = schedule_error(str(spec.get("schedule", "")))
        if why:
            out.append(finding("jobs", ref, f"CronJob {name} schedule {spec.get('schedule')!r} is invalid: {why}",
                               name, "CronJobBadSchedule", "warning", [f"cronjob:{name}:spec.schedule"], reason=why))
        if int(spec.get("startingDeadlineSeconds") or 0) < 0:
            out.append(finding("jobs", ref, f"CronJob {name} has a negative startingDeadlineSeconds", name,
                               "CronJobNegativeDeadline", "warning", [f"cronjob:{name}:spec.startingDeadlineSeconds"]))
    return out
