from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO, Literal
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, gettext_noop, ngettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import FormView, ListView, TemplateView
from django.views.generic.base import ContextMixin

from aliases import services
from aliases.aliasfile import COLUMNS, COLUMNS_JA
from aliases.forms import (
    AliasForm,
    AliasMoveForm,
    AliasSearchForm,
    AliasUploadForm,
    LocalDomainForm,
)
from aliases.models import Alias, LocalDomain
from controlcenter.findings import Finding, Level, sort_findings
from controlcenter.views import PageMixin

ALIAS_CRUMBS = (*PageMixin.crumbs, (_("Alias management"), "aliases:alias-list"))
SUMMARY_LIMIT = 50
CHANGE_PERMISSIONS = ("aliases.add_alias", "aliases.change_alias")


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """Back to the list page the form was posted from (same site only)."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ) or not target.startswith(reverse("aliases:alias-list")):
        target = reverse("aliases:alias-list")
    return HttpResponseRedirect(target)


def _back_to_row(request: HttpRequest, alias: Alias, row: int) -> HttpResponseRedirect:
    """Back to the list, on the page that now shows the moved alias (unless the list was
    filtered: the row numbers are the whole table's), scrolled to it."""
    parts = urlsplit(_back(request).url)
    params = QueryDict(parts.query, mutable=True)
    if not params.get("q") and not params.get("domain"):
        params["page"] = str((row - 1) // AliasListView.paginate_by + 1)
    query = f"?{params.urlencode()}" if params else ""
    return HttpResponseRedirect(f"{parts.path}{query}#alias-{alias.pk}")


def _warn(request: HttpRequest, findings: list[Finding]) -> None:
    for finding in findings:
        if finding.level is Level.WARNING:
            messages.warning(request, finding.render(gettext))


def _filtered(
    request: HttpRequest,
) -> tuple[AliasSearchForm, QuerySet[Alias], QuerySet[Alias] | None]:
    """The search form, the aliases it selects and, for a text search, the same aliases
    without the text filter (what :func:`services.alias_page` estimates against)."""
    form = AliasSearchForm(request.GET or None)
    query, domain = "", None
    if form.is_valid():
        query = form.cleaned_data.get("q", "").strip()
        domain = form.cleaned_data.get("domain")
    queryset = services.alias_search(query=query, domain=domain)
    scope = services.alias_search(domain=domain) if query else None
    return form, queryset, scope


@dataclass(frozen=True)
class AliasRow:
    """A row of the list: the alias, its row number in the whole table, its findings and,
    when an earlier wildcard shadows it (alias.W002), that wildcard and its row."""

    alias: Alias
    row: int
    findings: tuple[Finding, ...]
    wildcard: str = ""
    wildcard_row: int = 0

    @classmethod
    def of(cls, alias: Alias, row: int, findings: tuple[Finding, ...]) -> AliasRow:
        for finding in findings:
            if finding.code == "alias.W002":
                params = dict(finding.params)
                return cls(
                    alias, row, findings, str(params["earlier"]), int(str(params["earlier_row"]))
                )
        return cls(alias, row, findings)


class AliasListView(PermissionRequiredMixin, PageMixin, ListView[Alias]):
    permission_required = "aliases.view_alias"
    template_name = "aliases/alias_list.html"
    title = _("Alias management")
    paginate_by = 50

    def get_queryset(self) -> QuerySet[Alias]:
        self.search_form, queryset, self.scope = _filtered(self.request)
        return queryset.only("id", "position", "pattern", "target", "option", "comment")

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Alias], page_size: int
    ) -> tuple[Paginator[Alias], Page[Alias], list[Alias], bool]:
        """One page and its count from :func:`services.alias_page` (the count is an
        estimate past a threshold in a text search), never Django's count-then-slice."""
        found = services.alias_page(
            queryset,
            number=self.request.GET.get("page") or 1,
            per_page=page_size,
            scope=self.scope,
        )
        paginator: Paginator[Alias] = Paginator(queryset, page_size)
        paginator.__dict__["count"] = found.count  # the cached_property, already known
        self.count_exact = found.exact
        page = Page(found.aliases, found.number, paginator)
        return paginator, page, found.aliases, found.num_pages > 1

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["count_exact"] = self.count_exact
        context["search_exact_count"] = services.SEARCH_EXACT_COUNT
        overview = services.alias_overview(limit=SUMMARY_LIMIT)
        context["rows"] = [
            AliasRow.of(
                alias, overview.row_by_id.get(alias.pk, -1) + 1, overview.findings_for(alias.pk)
            )
            for alias in context["object_list"]
        ]
        context["total"] = len(overview.row_by_id)
        context["summary"] = list(overview.summary)
        context["summary_more"] = max(0, overview.total - SUMMARY_LIMIT)
        context["usage"] = overview.usage
        context["search_form"] = self.search_form
        params = self.request.GET.copy()
        params.pop("page", None)
        context["query_string"] = params.urlencode()
        context["domains_exist"] = LocalDomain.objects.exists()
        return context


class AliasFormMixin(PermissionRequiredMixin, PageMixin):
    template_name: str | None = "aliases/alias_form.html"
    crumbs = ALIAS_CRUMBS
    request: HttpRequest

    def saved(
        self, form: AliasForm, report: services.AliasSaveReport, message: str
    ) -> HttpResponse:
        messages.success(self.request, message % {"alias": report.alias.pattern})
        for warning in form.conversion_warnings():
            messages.warning(self.request, warning)
        _warn(self.request, report.warnings)
        return HttpResponseRedirect(reverse("aliases:alias-list"))


class AliasCreateView(AliasFormMixin, FormView[AliasForm]):
    permission_required = "aliases.add_alias"
    form_class = AliasForm
    title = _("Add an alias")

    def form_valid(self, form: AliasForm) -> HttpResponse:
        try:
            report = services.alias_create(**form.cleaned_data)
        except services.AliasRefused as refused:
            form.add_findings(refused.findings)
            return self.form_invalid(form)
        return self.saved(form, report, gettext("%(alias)s was added."))


class AliasUpdateView(AliasFormMixin, FormView[AliasForm]):
    permission_required = "aliases.change_alias"
    form_class = AliasForm
    title = _("Edit the alias")

    def get_initial(self) -> dict[str, Any]:
        return AliasForm.initial_for(self.get_object())

    def get_object(self) -> Alias:
        return get_object_or_404(Alias, pk=self.kwargs["pk"])

    def form_valid(self, form: AliasForm) -> HttpResponse:
        try:
            report = services.alias_update(alias=self.get_object(), **form.cleaned_data)
        except services.AliasRefused as refused:
            form.add_findings(refused.findings)
            return self.form_invalid(form)
        return self.saved(form, report, gettext("%(alias)s was saved."))


class AliasDeleteView(PermissionRequiredMixin, PageMixin, TemplateView):
    permission_required = "aliases.delete_alias"
    template_name = "aliases/alias_confirm_delete.html"
    title = _("Delete the alias")
    crumbs = ALIAS_CRUMBS

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["object"] = get_object_or_404(Alias, pk=self.kwargs["pk"])
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        alias = get_object_or_404(Alias, pk=pk)
        services.aliases_delete(ids=[alias.pk])
        messages.success(request, gettext("%(alias)s was deleted.") % {"alias": alias.pattern})
        return HttpResponseRedirect(reverse("aliases:alias-list"))


class AliasBulkDeleteView(PermissionRequiredMixin, PageMixin, ContextMixin, View):
    """The list's selection: a first POST shows what will be deleted and asks (the count and
    every address), the second (``confirm``) deletes; works without JavaScript."""

    permission_required = "aliases.delete_alias"
    title = _("Delete the selected aliases")
    crumbs = ALIAS_CRUMBS

    def post(self, request: HttpRequest) -> HttpResponse:
        ids = [int(value) for value in request.POST.getlist("selected") if value.isdigit()]
        if not ids:
            messages.error(
                request,
                gettext(
                    "No alias is selected: tick the aliases to delete in the list, then "
                    "press “Delete the selected aliases”."
                ),
            )
            return _back(request)
        if request.POST.get("confirm") != "yes":
            return self.confirm(ids)
        deleted = services.aliases_delete(ids=ids)
        messages.success(
            request,
            ngettext("%(count)s alias was deleted.", "%(count)s aliases were deleted.", deleted)
            % {"count": deleted},
        )
        return _back(request)

    def confirm(self, ids: list[int]) -> HttpResponse:
        aliases = list(Alias.objects.filter(pk__in=ids).order_by("position"))
        if not aliases:
            messages.error(self.request, gettext("The selected aliases no longer exist."))
            return _back(self.request)
        row_by_id = services.alias_overview(limit=SUMMARY_LIMIT).row_by_id
        context = self.get_context_data(
            rows=[(alias, row_by_id.get(alias.pk, -1) + 1) for alias in aliases],
            next=_back(self.request).url,
        )
        return render(self.request, "aliases/alias_bulk_delete.html", context)


class AliasMoveView(PermissionRequiredMixin, View):
    permission_required = "aliases.change_alias"
    direction: Literal["up", "down"] = "up"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        alias = get_object_or_404(Alias, pk=pk)
        if not services.alias_move(alias=alias, direction=self.direction):
            messages.info(
                request, gettext("%(alias)s cannot move further.") % {"alias": alias.pattern}
            )
        return _back(request)


class AliasMoveToView(PermissionRequiredMixin, View):
    """「移動…」 from the list: the alias to position N, the other rows in their order."""

    permission_required = "aliases.change_alias"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        alias = get_object_or_404(Alias, pk=pk)
        form = AliasMoveForm(request.POST)
        if not form.is_valid():
            typed = request.POST.get("row", "")
            for error in form.errors["row"]:
                messages.error(
                    request,
                    gettext("%(alias)s was not moved: “%(typed)s”: %(error)s")
                    % {"alias": alias.pattern, "typed": typed, "error": error},
                )
            return _back(request)
        try:
            report = services.alias_move_to(alias=alias, row=form.cleaned_data["row"])
        except Alias.DoesNotExist:
            raise Http404 from None
        return _moved(request, report)


class AliasMoveAboveWildcardView(PermissionRequiredMixin, View):
    permission_required = "aliases.change_alias"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        alias = get_object_or_404(Alias, pk=pk)
        try:
            report = services.alias_move_above_wildcard(alias=alias)
        except Alias.DoesNotExist:
            raise Http404 from None
        if not report.moved:
            messages.info(
                request,
                gettext("%(alias)s is not below a wildcard that catches its mail.")
                % {"alias": alias.pattern},
            )
            return _back(request)
        return _moved(request, report)


def _moved(request: HttpRequest, report: services.AliasMoveReport) -> HttpResponse:
    params = {
        "alias": report.alias.pattern,
        "row": report.after,
        "before": report.before,
        "wildcard": report.wildcard,
    }
    if not report.moved:
        messages.info(request, gettext("%(alias)s is already at position %(row)s.") % params)
    elif report.wildcard:
        messages.success(
            request,
            gettext(
                "%(alias)s was moved from position %(before)s to %(row)s, above the wildcard "
                "%(wildcard)s: it is used again."
            )
            % params,
        )
    else:
        messages.success(
            request, gettext("%(alias)s was moved from position %(before)s to %(row)s.") % params
        )
    return _back_to_row(request, report.alias, report.after)


class AliasExportView(PermissionRequiredMixin, View):
    permission_required = "aliases.view_alias"

    def get(self, request: HttpRequest) -> HttpResponse:
        _form, queryset, _scope = _filtered(request)
        response = HttpResponse(
            services.aliases_export_csv(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="aliases.csv"'
        return response


#: How the preview names the encoding a file was read in (ImportReport.encoding).
ENCODING_NAMES = {"utf-8": "UTF-8", "cp932": "Shift_JIS (CP932)", "utf-16": "UTF-16"}


class UploadMixin(PermissionRequiredMixin, PageMixin, ContextMixin):
    permission_required = CHANGE_PERMISSIONS
    title = _("CSV upload")
    crumbs = ALIAS_CRUMBS
    request: HttpRequest

    def show(
        self, form: AliasUploadForm | None = None, status: int = 200, **extra: Any
    ) -> HttpResponse:
        form = form or AliasUploadForm(initial={"encoding": "auto"})
        context = self.get_context_data(
            form=form,
            header_ja=format_html('<code translate="no">{}</code>', ",".join(COLUMNS_JA)),
            header_en=format_html('<code translate="no">{}</code>', ",".join(COLUMNS)),
            **extra,
        )
        return render(self.request, "aliases/alias_upload.html", context, status=status)

    def show_preview(
        self,
        preview: services.UploadPreview,
        form: AliasUploadForm | None = None,
        *,
        data: bytes | memoryview | BinaryIO | None = None,
        **extra: Any,
    ) -> HttpResponse:
        """The preview; ``data`` is the file (the stored upload's by default), for what was
        on the lines the import could not read."""
        report = preview.report
        raw = services.upload_lines(
            data=preview.upload.data if data is None else data,
            encoding=report.encoding,
            lines=[row.line for row in preview.rows if row.entry is None],
        )
        return self.show(
            form,
            upload=preview.upload,
            report=report,
            filename=format_html('<span translate="no">{}</span>', preview.upload.filename),
            encoding=format_html(
                '<span translate="no">{}</span>',
                ENCODING_NAMES.get(report.encoding, report.encoding),
            ),
            changes=bool(report.created or report.updated or report.domains_added),
            # Stored aliases the file does not name: an import keeps them as they are.
            kept=max(0, Alias.objects.count() - report.updated - report.unchanged),
            preview_rows=[(row, raw.get(row.line)) for row in preview.rows],
            preview_hidden=preview.hidden,
            findings=sort_findings(preview.report.findings)[:SUMMARY_LIMIT],
            findings_more=max(
                0,
                preview.report.error_count + preview.report.warning_count - SUMMARY_LIMIT,
            ),
            **extra,
        )


class AliasUploadView(UploadMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self.show()

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AliasUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.show(form)
        uploaded = form.cleaned_data["file"]
        preview = services.upload_receive(
            user=request.user,
            file=uploaded,
            filename=uploaded.name,
            encoding=form.cleaned_data["encoding"],
            add_domains=form.cleaned_data["add_domains"],
        )
        return self.show_preview(preview, data=uploaded)


#: After an import that brought policy risks with it (cli.md: import_aliases, "policy_risks").
RISKS_MESSAGE = gettext_noop(
    "This is your server's current configuration. Publishing stays blocked until the errors "
    "marked in red are fixed."
)
UNKNOWN = gettext_noop("This upload is unknown or expired; upload the file again.")
STALE = gettext_noop(
    "The aliases, domains or settings changed after the preview; nothing was "
    "imported. Upload the file again to see an up-to-date preview."
)


class AliasUploadConfirmView(UploadMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        token = request.POST.get("token", "")
        try:
            report = services.upload_confirm(token=token, user=request.user)
        except services.UploadNotFound:
            return self.refused(token, gettext(UNKNOWN), status=400)
        except services.StaleImportError:
            return self.refused(token, gettext(STALE), status=409)
        if not report.written:
            return self.refused(
                token, gettext("The file has errors; nothing was imported."), status=400
            )
        _imported(request, report)
        return HttpResponseRedirect(reverse("aliases:alias-list"))

    def refused(self, token: str, message: str, *, status: int) -> HttpResponse:
        """The message over the stored upload's preview as it stands now, without the
        confirm button: the user sees which rows were refused and why."""
        messages.error(self.request, message)
        try:
            preview = services.upload_preview(token=token, user=self.request.user)
        except services.UploadNotFound:  # no upload to show (unknown, expired or foreign)
            return self.show(status=status)
        return self.show_preview(preview, status=status, refused=True)


def _imported(request: HttpRequest, report: services.ImportReport) -> None:
    messages.success(
        request,
        gettext("Imported: %(created)s new, %(updated)s updated, %(unchanged)s unchanged.")
        % {"created": report.created, "updated": report.updated, "unchanged": report.unchanged},
    )
    if report.domains_added:
        messages.info(
            request,
            gettext("Local domains added: %(domains)s")
            % {"domains": ", ".join(report.domains_added)},
        )
    if report.risks:
        messages.error(request, gettext(RISKS_MESSAGE))
    _warn(request, report.warnings[:SUMMARY_LIMIT])


class AliasUploadReportView(PermissionRequiredMixin, View):
    """The preview's errors and warnings as CSV (line, level, code, message)."""

    permission_required = CHANGE_PERMISSIONS

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            data = services.upload_findings_csv(token=token, user=request.user)
        except services.UploadNotFound:
            raise Http404 from None
        response = HttpResponse(data, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="alias-import-report.csv"'
        return response


class LocalDomainListView(PermissionRequiredMixin, PageMixin, ListView[LocalDomain]):
    permission_required = "aliases.view_localdomain"
    template_name = "aliases/localdomain_list.html"
    title = _("Local domains")
    crumbs = ALIAS_CRUMBS

    def get_queryset(self) -> QuerySet[LocalDomain]:
        return LocalDomain.objects.annotate(alias_count=Count("aliases")).order_by("name")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", LocalDomainForm())
        return context


class LocalDomainCreateView(PermissionRequiredMixin, PageMixin, FormView[LocalDomainForm]):
    permission_required = "aliases.add_localdomain"
    form_class = LocalDomainForm
    template_name = "aliases/localdomain_form.html"
    title = _("Add a local domain")
    crumbs = (*ALIAS_CRUMBS, (_("Local domains"), "aliases:domain-list"))
    success_url = reverse_lazy("aliases:domain-list")

    def form_valid(self, form: LocalDomainForm) -> HttpResponse:
        try:
            domain = services.domain_create(
                name=form.cleaned_data["name"], comment=form.cleaned_data["comment"]
            )
        except ValidationError as error:
            form.add_error("name", error)
            return self.form_invalid(form)
        messages.success(self.request, gettext("%(domain)s was added.") % {"domain": domain.name})
        return super().form_valid(form)


class LocalDomainDeleteView(PermissionRequiredMixin, View):
    permission_required = "aliases.delete_localdomain"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        domain = get_object_or_404(LocalDomain, pk=pk)
        try:
            services.domain_delete(domain=domain)
        except services.DomainInUse:
            messages.error(
                request,
                gettext("%(domain)s still has aliases; delete or move them first.")
                % {"domain": domain.name},
            )
        else:
            messages.success(request, gettext("%(domain)s was deleted.") % {"domain": domain.name})
        return HttpResponseRedirect(reverse("aliases:domain-list"))
