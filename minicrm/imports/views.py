"""The imports page: upload a CSV, follow imports as they run, resume one whose worker was lost."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from minicrm.accounts.models import Role, User
from minicrm.accounts.permissions import role_required
from minicrm.core.errors import ApplicationError

from .columns import COLUMN_HELP, COLUMNS
from .forms import ImportForm
from .models import Import
from .selectors import import_list
from .services import import_create, import_resume

PAGE_SIZE = 20


def _history(request: HttpRequest) -> dict[str, object]:
    page = Paginator(import_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    imports = list(page.object_list)
    user = request.user
    return {
        "page": page,
        "imports": imports,
        "can_upload": isinstance(user, User) and user.has_role(Role.MARKETER),
        # Poll while something can still move: one whose worker was lost is resumed by the
        # recovery sweep within a minute, so it is followed too.
        "polling": any(i.is_active for i in imports),
    }


def _columns() -> list[dict[str, object]]:
    return [
        {
            "kind": kind,
            "label": label,
            "columns": [
                {
                    "name": name,
                    "required": name in COLUMNS[kind].required,
                    "help": COLUMN_HELP[kind][name][0],
                    "example": COLUMN_HELP[kind][name][1],
                }
                for name in COLUMNS[kind].all
            ],
        }
        for kind, label in Import.Kind.choices
    ]


@require_GET
def imports_page(request: HttpRequest) -> HttpResponse:
    return _page(request, ImportForm())


def _page(request: HttpRequest, form: ImportForm, *, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "column_sets": _columns(),
        "max_file_bytes": settings.MINICRM_MAX_IMPORT_BYTES,
        **_history(request),
    }
    return render(request, "imports/list.html", context, status=status)


@require_GET
def imports_history(request: HttpRequest) -> HttpResponse:
    """The history table alone, which the page polls while an import is queued or running."""
    return render(request, "imports/_history.html", _history(request))


@require_POST
@role_required(Role.MARKETER)
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if form.is_valid():
        user = request.user if isinstance(request.user, User) else None
        try:
            created = import_create(
                file=form.cleaned_data["file"], kind=form.cleaned_data["kind"], created_by=user
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"{created.original_filename} is queued for import.")
            return redirect("imports:list")
    return _page(request, form, status=400)


@require_POST
@role_required(Role.MARKETER)
def import_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        resumed = import_resume(import_id=pk)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{resumed.original_filename} will carry on where it stopped.")
    return redirect("imports:list")
