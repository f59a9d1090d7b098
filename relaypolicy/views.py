from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import TemplateView, UpdateView
from django.views.generic.base import ContextMixin

from controlcenter import policycache
from controlcenter.findings import Level
from controlcenter.models import ServerSettings
from controlcenter.services import server_settings_save
from controlcenter.simulation import Session, evaluate_session
from controlcenter.views import PageMixin
from relaypolicy import services
from relaypolicy.forms import EffectImportForm, RelayRestrictionForm, SimulationForm
from relaypolicy.rowforms import MODIFIER_CHOICES, fix_row_data
from relaypolicy.table import Part
from relaypolicy.tableforms import RelayTableForm
from relaypolicy.window import Window

RELAY_CRUMBS = (
    *PageMixin.crumbs,
    (_("Relay restriction"), "relaypolicy:restriction"),
)
MACHINE_CRUMBS = (*RELAY_CRUMBS, (_("Per-machine relay"), "relaypolicy:machine-relay"))


class WritePermissionMixin(PermissionRequiredMixin):
    """GET needs ``permission_required``; POST also needs ``change_permission``."""

    change_permission = "relaypolicy.change_relayrule"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        posting = request.method == "POST" and user.is_authenticated
        if posting and not user.has_perm(self.change_permission):
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)


class RestrictionView(WritePermissionMixin, PageMixin, UpdateView[ServerSettings, Any]):
    """中継の制限設定: message size, the CC/BCC limit and the way into マシンごとの中継."""

    permission_required = "relaypolicy.view_relayrule"
    change_permission = "controlcenter.change_serversettings"
    form_class = RelayRestrictionForm
    template_name = "relaypolicy/restriction_form.html"
    title = _("Relay restriction settings")
    success_url = reverse_lazy("relaypolicy:restriction")

    def get_object(self, queryset: QuerySet[ServerSettings] | None = None) -> ServerSettings:
        return ServerSettings.load()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["report"] = policycache.relay_report()
        context["can_change"] = self.request.user.has_perm(self.change_permission)
        context["machine_relay_url"] = reverse("relaypolicy:machine-relay")
        return context

    def form_valid(self, form: RelayRestrictionForm) -> HttpResponse:
        server_settings_save(form=form)  # audited like 全設定
        messages.success(self.request, _("The relay restriction settings were saved."))
        return HttpResponseRedirect(self.get_success_url())


ERRORS_MESSAGE = _("Fix the errors marked in red; nothing was saved.")
STALE_MESSAGE = _(
    "Someone else saved the relay table after you opened this page. Nothing was "
    "overwritten: reload the page to see their changes, then make yours again."
)


class MachineRelayView(WritePermissionMixin, PageMixin, ContextMixin, View):
    """マシンごとの中継: every effect.dat line as a form row, saved together with [設定].

    A table longer than a page (:data:`relaypolicy.window.PAGE_ROWS`) is edited a page at a
    time: ``?page=N``, or ``?line=N`` for the page holding effect.dat line N (the links of
    findings, 中継テスト and セルフテスト)."""

    permission_required = "relaypolicy.view_relayrule"
    title = _("Per-machine relay")
    crumbs = RELAY_CRUMBS

    def get(self, request: HttpRequest) -> HttpResponse:
        table, version = services.relay_table_snapshot()
        # The validation of the stored table, computed once per policy state.
        report = policycache.relay_report()
        if report.table != table:  # saved in between: validate what the page shows
            report = services.relay_check(table)
        window = self.requested_window(report)
        form = RelayTableForm(table=table, version=version, window=window)
        form.bind_table_rows()
        form.attach(report, block=False)
        return self.show(form)

    def requested_window(self, report: services.RelayReport) -> Window:
        total = len(report.table.rows)
        line = _number(self.request.GET.get("line"))
        owner = report.rendered.owner(line) if line else None
        if owner is not None and owner.part is Part.ROW:
            return Window.for_position(owner.index + 1, total)
        if owner is not None and owner.part is Part.TERMINATOR:
            return Window.for_position(total, total)
        if row := _number(self.request.GET.get("row")):
            return Window.for_position(min(row, total), total)
        return Window.for_page(_number(self.request.GET.get("page")) or 1, total)

    def post(self, request: HttpRequest) -> HttpResponse:
        if "fix" in request.POST:
            return self.fix(str(request.POST["fix"]))
        form = RelayTableForm(request.POST)
        stored, _version = services.relay_table_snapshot()
        if not form.is_valid():
            form.place(len(stored.rows))
            return self.show(form, status=200)
        try:
            report = services.relay_table_save(
                table=form.table(stored), version=form.version, user=request.user, typed=True
            )
        except services.RelayTableNotSaved as not_saved:
            form.attach(not_saved.report, block=True, refused=not_saved.refused)
            stale = isinstance(not_saved, services.StaleTableError)
            messages.error(request, STALE_MESSAGE if stale else ERRORS_MESSAGE)
            return self.show(form, status=409 if stale else 200)
        messages.success(request, _("The per-machine relay table was saved."))
        risks = [f for f in report.findings if f.is_error]
        if risks:  # only risks the stored table already had: a save never adds one
            messages.error(
                request,
                gettext(
                    "The table still has %(count)s error(s) that it had before this save; "
                    "publishing stays blocked until they are fixed."
                )
                % {"count": len(risks)},
            )
        warnings = [f for f in report.findings if f.level is Level.WARNING]
        if warnings:
            messages.warning(
                request,
                gettext("Saved with %(count)s warning(s); they are listed above the table.")
                % {"count": len(warnings)},
            )
        url = reverse("relaypolicy:machine-relay")
        page = Window.for_position(form.window.start + 1, len(report.table.rows)).page
        return HttpResponseRedirect(f"{url}?page={page}" if page > 1 else url)

    def fix(self, prefix: str) -> HttpResponse:
        """Rewrite one row as the daemon will read it as meant; nothing is saved yet."""
        form = RelayTableForm(fix_row_data(self.request.POST, prefix))
        stored, _version = services.relay_table_snapshot()
        if form.is_valid():
            form.attach(services.relay_check(form.table(stored)), block=False)
            messages.info(
                self.request, _("The row was rewritten with one space; press Set to save it.")
            )
        else:
            form.place(len(stored.rows))
        return self.show(form)

    def show(self, form: RelayTableForm, status: int = 200) -> HttpResponse:
        window = form.window
        url = reverse("relaypolicy:machine-relay")
        context = self.get_context_data(
            form=form,
            window=window,
            page_links=[
                (page, first, last, f"{url}?page={page}" if page > 1 else url)
                for page, first, last in window.page_ranges()
            ]
            if window.paged
            else [],
            # The keyword, then what it does (the labels say "keyword: what it does").
            modifier_legend=[
                (value, str(label).split(": ", 1)[-1]) for value, label in MODIFIER_CHOICES
            ],
            can_change=self.request.user.has_perm(self.change_permission),
        )
        return render(self.request, "relaypolicy/relayrule_form.html", context, status=status)


def _number(raw: str | None) -> int:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 9 else 0


class EffectTextView(PermissionRequiredMixin, PageMixin, TemplateView):
    """The exact effect.dat that the stored rows render to, read-only."""

    permission_required = "relaypolicy.view_relayrule"
    template_name = "relaypolicy/effect_text.html"
    title = _("effect.dat text")
    crumbs = MACHINE_CRUMBS

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        effect = policycache.effect_file()
        if request.GET.get("download"):
            response = HttpResponse(effect.data, content_type="text/plain; charset=shift_jis")
            response["Content-Disposition"] = 'attachment; filename="effect.dat"'
            return response
        return self.render_to_response(
            self.get_context_data(report=effect.report, lines=effect.lines)
        )


#: After an import that brought policy risks with it (cli.md: import_effect, "policy_risks").
RISKS_MESSAGE = _(
    "This is your server's current configuration. Publishing stays blocked until the errors "
    "marked in red are fixed."
)
REFUSED_MESSAGE = _(
    "The file has errors that are not about the relay policy (lines the daemon cannot read as "
    "written); nothing was imported. Fix those lines and preview the file again."
)


class ImportView(WritePermissionMixin, PageMixin, ContextMixin, View):
    """Paste or upload an existing effect.dat, see the parsed rows and findings, then replace."""

    permission_required = "relaypolicy.change_relayrule"
    title = _("Import effect.dat")
    crumbs = MACHINE_CRUMBS

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.show(EffectImportForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        if "confirm" in request.POST:
            return self.confirm(request.POST.get("token", ""))
        form = EffectImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.show(form)
        preview = services.relay_import_preview(**form.payload())
        token = services.relay_import_token(preview) if preview.confirmable else ""
        return self.show(form, preview=preview, token=token)

    def confirm(self, token: str) -> HttpResponse:
        try:
            report = services.relay_import_confirm(token=token, user=self.request.user)
        except services.RelayImportRefused as refused:
            messages.error(self.request, REFUSED_MESSAGE)
            return self.show(EffectImportForm(), status=200, preview=refused.preview, token="")
        except services.StaleImportError as error:
            messages.error(
                self.request,
                _(
                    "The relay table changed since the preview, or the "
                    "preview is too old; nothing was replaced. Preview "
                    "the file again."
                ),
            )
            return self.show(EffectImportForm(initial={"text": error.text}), status=409)
        messages.success(
            self.request,
            gettext("The relay table was replaced by the imported file (%(count)s rows).")
            % {"count": len(report.report.table.rows)},
        )
        if report.risks:
            messages.error(self.request, RISKS_MESSAGE)
        return HttpResponseRedirect(reverse("relaypolicy:machine-relay"))

    def show(self, form: EffectImportForm, status: int = 200, **extra: Any) -> HttpResponse:
        context = self.get_context_data(form=form, **extra)
        return render(self.request, "relaypolicy/import_form.html", context, status=status)


class SimulateView(PermissionRequiredMixin, PageMixin, TemplateView):
    """中継テスト: what the gateway would answer to one session, line by line."""

    permission_required = "controlcenter.run_simulation"
    template_name = "relaypolicy/simulate.html"
    title = _("Relay test")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        bound = "client_ip" in self.request.GET
        form = SimulationForm(self.request.GET if bound else None)
        context["form"] = form
        context["tab"] = "simulate"
        context["relay_url"] = reverse("relaypolicy:machine-relay")
        if bound and form.is_valid():
            data = form.cleaned_data
            session = Session(
                client_ip=data["client_ip"],
                mail_from=data["mail_from"],
                rcpt_to=tuple(data["rcpt_to"]),
                auth=data["auth"],
            )
            context["result"] = evaluate_session(policycache.compiled_policy(), session)
        return context


class SelftestView(PermissionRequiredMixin, PageMixin, TemplateView):
    """セルフテスト: the built-in open-relay probes against the stored policy."""

    permission_required = "controlcenter.run_simulation"
    template_name = "relaypolicy/selftest.html"
    title = _("Self-test")
    crumbs = (*PageMixin.crumbs, (_("Relay test"), "relaypolicy:simulate"))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        state = policycache.policy_state()
        page = policycache.selftest_page(state)
        context["policy_state"] = state  # the key of the page's cached fragment
        context["page"] = page
        context["report"] = page
        context["findings"] = page.findings
        context["tab"] = "selftest"
        context["relay_url"] = reverse("relaypolicy:machine-relay")
        return context
