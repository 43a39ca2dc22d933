"""Probes for a load balancer or orchestrator: /healthz (liveness: the process answers) and
/readyz (readiness: what requests need is reachable). Both are public and say nothing secret."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import readiness_checks, snapshot_report


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: answers without touching the database, so an outage of the database restarts
    nothing (restarting would not bring it back); /readyz is the one that takes it into account."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready (200) or not (503, naming the failing checks). The preview snapshot is reported but
    never makes the process unready: without it previews and facts are answered in SQL."""
    checks = readiness_checks()
    failing = [check.name for check in checks if not check.ok]
    return JsonResponse(
        {
            "status": "not ready" if failing else "ready",
            "failing": failing,
            "checks": {check.name: check.as_dict() for check in checks},
            "snapshot": snapshot_report(),
        },
        status=503 if failing else 200,
    )
