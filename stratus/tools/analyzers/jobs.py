"""Job analyzer: Jobs that failed (backoff limit, deadline) and suspended Jobs and CronJobs."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


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
        name = cj["metadata"]["name"]
        if (cj.get("spec") or {}).get("suspend"):
            out.append(finding("jobs", f"CronJob/{name}", f"CronJob {name} is suspended: no new runs are scheduled",
                               name, "CronJobSuspended", "info", [f"cronjob:{name}:spec.suspend"]))
    return out
