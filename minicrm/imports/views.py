"""The imports page: upload a CSV, map its columns, follow imports as they run (with their first
row errors in place), resume one whose worker was lost."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from minicrm.accounts.models import Role, User
from minicrm.accounts.permissions import role_required
from minicrm.accounts.services import client_ip
from minicrm.core.errors import ApplicationError

from .columns import COLUMN_HELP, COLUMNS
from .forms import ImportForm
from .mapping import TARGET_HELP, TARGETS, ColumnMap
from .models import Import
from .selectors import import_list, import_mapping_preview
from .services import import_create, import_mapping_confirm, import_resume

PAGE_SIZE = 20
# Row errors shown in place under an import in the history; the rest are in the report.
SHOWN_ERRORS = 5


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
        "shown_errors": SHOWN_ERRORS,
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
                file=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
                created_by=user,
                await_mapping=True,
            )
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return redirect("imports:mapping", pk=created.pk)
    return _page(request, form, status=400)


def _mapping_rows(mapping: ColumnMap, preview_rows: list[list[str]], names: list[str]) -> list:
    """One line per field of ours: the column chosen for it and what that column holds."""
    position = {name.strip(): index for index, name in enumerate(names)}
    lines = []
    for field in TARGETS[mapping.kind]:
        chosen = mapping.columns.get(field, "")
        index = position.get(chosen)
        samples = [row[index] for row in preview_rows if index is not None and index < len(row)]
        help_text = TARGET_HELP.get(field) or COLUMN_HELP[mapping.kind].get(field, ("", ""))[0]
        lines.append(
            {
                "field": field,
                "chosen": chosen,
                "required": field in mapping.required,
                "help": help_text,
                "samples": [sample for sample in samples if sample.strip()][:3],
            }
        )
    return lines


def _mapping_posted(request: HttpRequest) -> dict[str, object]:
    kind = request.POST.get("kind", "")
    fields = TARGETS.get(kind, ())
    return {
        "kind": kind,
        "key": request.POST.get("key", "external_id"),
        "line_items": request.POST.get("line_items") == "on",
        "columns": {
            field: request.POST[f"column-{field}"]
            for field in fields
            if request.POST.get(f"column-{field}", "").strip()
        },
    }


@require_http_methods(["GET", "POST"])
@role_required(Role.MARKETER)
def import_mapping_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The file's header and first rows beside a mapping to our fields, guessed for the person
    to correct; confirming it starts the import and remembers the mapping for this header."""
    import_ = get_object_or_404(Import, pk=pk)
    if not import_.needs_mapping:
        messages.info(request, f"{import_.original_filename} is already {import_.status}.")
        return redirect("imports:list")
    error = ""
    kind = request.GET.get("kind") if request.GET.get("kind") in Import.Kind.values else None
    if request.method == "POST":
        posted = _mapping_posted(request)
        user = request.user if isinstance(request.user, User) else None
        try:
            started = import_mapping_confirm(
                import_id=pk, mapping=posted, confirmed_by=user, ip_address=client_ip(request)
            )
        except ApplicationError as problem:
            error = problem.message
            kind = str(posted["kind"]) if posted["kind"] in Import.Kind.values else None
        else:
            messages.success(request, f"{started.original_filename} is queued for import.")
            return redirect("imports:list")
    try:
        preview = import_mapping_preview(import_=import_, kind=kind)
    except (ApplicationError, FileNotFoundError):
        messages.error(request, "The uploaded file cannot be read any more; upload it again.")
        return redirect("imports:list")
    mapping = preview.mapping
    if error:
        # Show what the person chose, not the guess, next to the message.
        posted_columns = _mapping_posted(request)["columns"]
        mapping = mapping.model_copy(
            update={
                "columns": posted_columns,
                "key": request.POST.get("key", mapping.key)
                if request.POST.get("key") in ("external_id", "email")
                else mapping.key,
                "line_items": request.POST.get("line_items") == "on",
            }
        )
    context = {
        "import": import_,
        "names": [name.strip() for name in preview.names],
        "preview_rows": preview.rows,
        "mapping": mapping,
        "how": preview.how,
        "lines": _mapping_rows(mapping, preview.rows, preview.names),
        "other_kind": "customers" if mapping.kind == "orders" else "orders",
        "error": error,
    }
    return render(request, "imports/mapping.html", context, status=400 if error else 200)


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
