"""The segments list page: each segment's size, share of all customers and 30-day trend."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from minicrm.accounts.models import Role, User

from .selectors import segment_list

LIST_PAGE_SIZE = 50


@require_GET
def segment_list_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(segment_list(), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    can_edit = isinstance(request.user, User) and request.user.has_role(Role.MARKETER)
    context = {"segments": page.object_list, "page": page, "can_edit": can_edit}
    return render(request, "segments/list.html", context)
