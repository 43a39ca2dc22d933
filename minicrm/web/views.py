"""The shell's own pages: dashboard, health check, and sections that later features fill."""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "web/dashboard.html")


@require_GET
def placeholder(request: HttpRequest, section: str) -> HttpResponse:
    return render(request, "web/placeholder.html", {"section": section})


@require_GET
def customer_search(request: HttpRequest) -> HttpResponse:
    return render(request, "web/customer_search_results.html", {"customers": []})


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
