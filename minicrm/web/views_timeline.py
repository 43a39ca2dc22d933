"""The activity timeline fragment of a customer's page, loaded by htmx (see web.timeline)."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from minicrm.core.errors import ApplicationError, NotFoundError
from minicrm.core.replica import replica_reads
from minicrm.customers.selectors import customer_get

from .timeline import TIMELINE_PAGE_SIZE, TimelineCursor, customer_timeline


@require_GET
@replica_reads()
def customer_timeline_fragment(request: HttpRequest, pk: int) -> HttpResponse:
    """One page of the timeline; `?before=<cursor>` for the page after it ("Show older")."""
    try:
        customer = customer_get(customer_id=pk)
    except NotFoundError as error:
        raise Http404(error.message) from error
    raw = request.GET.get("before", "")
    try:
        before = TimelineCursor.decode(raw) if raw else None
    except ApplicationError as error:
        return HttpResponseBadRequest(error.message)
    page = customer_timeline(customer=customer, before=before, limit=TIMELINE_PAGE_SIZE)
    context = {"customer": customer, "timeline": page, "continued": before is not None}
    return render(request, "web/_customer_timeline.html", context)
