from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import Promise
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import (
    DetailView,
    FormView,
    ListView,
    RedirectView,
    TemplateView,
    UpdateView,
    View,
)

from controlcenter import policycache, publishing, services
from controlcenter.audit import AuditAction
from controlcenter.clientip import client_ip
from controlcenter.forms import (
    ServerSettingsForm,
    UserCreateForm,
    UserPasswordForm,
    UserUpdateForm,
)
from controlcenter.models import (
    LEGACY_COMMAND_LINE_ACTOR,
    ActorKind,
    AuditEntry,
    Export,
    ExportStatus,
    ServerSettings,
)
from controlcenter.navigation import system_menu
from controlcenter.roles import Role

User = get_user_model()

Crumb = tuple[str | Promise, str | None]


class PageMixin:
    """Title and breadcrumbs that mirror the vendor's: トップ › メールサーバ管理 › …"""

    title: str | Promise = ""
    crumbs: tuple[tuple[str | Promise, str], ...] = (
        (_("Mail server management"), "controlcenter:system-menu"),
        (_("System management menu"), "controlcenter:system-menu"),
    )

    def get_breadcrumbs(self) -> list[Crumb]:
        trail: list[Crumb] = [(_("Top"), reverse("controlcenter:dashboard"))]
        trail += [(label, reverse(name)) for label, name in self.crumbs]
        trail.append((self.title, None))
        return trail

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        context["title"] = self.title
        context["breadcrumbs"] = distinct_links(
            self.get_breadcrumbs(),
            current=self.request.path,  # type: ignore[attr-defined]
        )
        return context


def distinct_links(trail: list[Crumb], *, current: str) -> list[Crumb]:
    """The trail with each address linked once and never to the page itself: the vendor's
    「メールサーバ管理」 and 「システム管理メニュー」 are one page here, so the first stays text."""
    urls = [url for _label, url in trail]
    return [
        (label, None if url == current or url in urls[index + 1 :] else url)
        for index, (label, url) in enumerate(trail)
    ]


class FaviconView(RedirectView):
    def get_redirect_url(self, *args: Any, **kwargs: Any) -> str:
        return static("favicon.svg")


class DashboardView(PermissionRequiredMixin, PageMixin, TemplateView):
    permission_required = "controlcenter.view_serversettings"
    template_name = "controlcenter/dashboard.html"
    title = _("Top")
    crumbs = ()

    def get_breadcrumbs(self) -> list[Crumb]:
        return [(_("Top"), None)]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(services.dashboard_status())
        context["menu"] = system_menu(self.request.user)
        context["relay_url"] = reverse("relaypolicy:machine-relay")
        return context


class SystemMenuView(PageMixin, TemplateView):
    template_name = "controlcenter/system_menu.html"
    title = _("System management menu")
    crumbs = ((_("Mail server management"), "controlcenter:system-menu"),)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["menu"] = system_menu(self.request.user)
        return context


class ServerSettingsView(PermissionRequiredMixin, PageMixin, UpdateView[ServerSettings, Any]):
    permission_required = "controlcenter.view_serversettings"
    form_class = ServerSettingsForm
    template_name = "controlcenter/serversettings_form.html"
    title = _("All settings (server environment)")
    success_url = reverse_lazy("controlcenter:settings")

    def get_object(self, queryset: QuerySet[ServerSettings] | None = None) -> ServerSettings:
        return ServerSettings.load()

    def post(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm("controlcenter.change_serversettings"):
            return self.handle_no_permission()
        return super().post(request, *args, **kwargs)

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["export_settings"] = self.request.user.has_perm(
            "controlcenter.change_export_settings"
        )
        return kwargs

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_change"] = self.request.user.has_perm("controlcenter.change_serversettings")
        context["export_default"] = ServerSettings(export_dir="").export_path
        context["findings"] = services.server_settings_findings(self.object)
        return context

    def form_valid(self, form: ServerSettingsForm) -> HttpResponse:
        try:
            self.object = services.server_settings_save(form=form)
        except ValidationError:
            # Checked again under the row lock: the aliases or the settings changed meanwhile.
            return self.form_invalid(form)
        findings = services.server_settings_findings(self.object)
        if findings:
            # The page shows the findings themselves; the message only points at them.
            messages.warning(
                self.request,
                ngettext(
                    "The server settings were saved, with %(count)s warning: see below.",
                    "The server settings were saved, with %(count)s warnings: see below.",
                    len(findings),
                )
                % {"count": len(findings)},
            )
        else:
            messages.success(self.request, _("The server settings were saved."))
        return HttpResponseRedirect(self.get_success_url())


class UserListView(PermissionRequiredMixin, PageMixin, ListView[AbstractUser]):
    permission_required = "auth.view_user"
    template_name = "controlcenter/user_list.html"
    title = _("Admin users")
    paginate_by = 50

    def get_queryset(self) -> QuerySet[AbstractUser]:
        return User.objects.prefetch_related("groups").order_by("username")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rows"] = [(user, services.user_role(user)) for user in context["object_list"]]
        return context


class UserCrumbsMixin(PageMixin):
    crumbs = (
        *PageMixin.crumbs,
        (_("Admin users"), "controlcenter:user-list"),
    )


class UserCreateView(PermissionRequiredMixin, UserCrumbsMixin, FormView[UserCreateForm]):
    permission_required = "auth.add_user"
    form_class = UserCreateForm
    template_name = "controlcenter/user_form.html"
    title = _("Add an admin user")
    success_url = reverse_lazy("controlcenter:user-list")

    def form_valid(self, form: UserCreateForm) -> HttpResponse:
        data = form.cleaned_data
        user = services.user_create(
            username=data["username"],
            password=data["password1"],
            role=Role(data["role"]),
            last_name=data["last_name"],
            first_name=data["first_name"],
            email=data["email"],
        )
        messages.success(self.request, _("%(user)s was added.") % {"user": user.get_username()})
        return super().form_valid(form)


class UserTargetMixin:
    kwargs: dict[str, Any]

    def get_target(self) -> AbstractUser:
        return get_object_or_404(User, pk=self.kwargs["pk"])


class UserUpdateView(
    PermissionRequiredMixin, UserTargetMixin, UserCrumbsMixin, FormView[UserUpdateForm]
):
    permission_required = "auth.change_user"
    form_class = UserUpdateForm
    template_name = "controlcenter/user_form.html"
    success_url = reverse_lazy("controlcenter:user-list")

    @property
    def title(self) -> str:  # type: ignore[override]
        return str(_("Edit %(user)s")) % {"user": self.get_target().get_username()}

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        target = self.get_target()
        kwargs["instance"] = target
        role = services.user_role(target)
        kwargs["initial"] = {"role": role.value if role else Role.VIEWER.value}
        return kwargs

    def form_valid(self, form: UserUpdateForm) -> HttpResponse:
        data = form.cleaned_data
        target = self.get_target()
        try:
            services.user_update(
                user=target,
                role=Role(data["role"]),
                is_active=data["is_active"],
                last_name=data["last_name"],
                first_name=data["first_name"],
                email=data["email"],
            )
        except ValidationError as error:
            form.add_error(_last_administrator_field(error, data), error)
            return self.form_invalid(form)
        messages.success(self.request, _("%(user)s was saved.") % {"user": target.get_username()})
        return HttpResponseRedirect(self.get_success_url())


def _last_administrator_field(error: ValidationError, data: dict[str, Any]) -> str | None:
    """The field that made the last administrator stop being one: the role, or 有効."""
    if getattr(error, "code", None) != "last_administrator":
        return None
    return "is_active" if Role(data["role"]) is Role.ADMINISTRATOR else "role"


class UserPasswordView(
    PermissionRequiredMixin, UserTargetMixin, UserCrumbsMixin, FormView[UserPasswordForm]
):
    permission_required = "auth.change_user"
    form_class = UserPasswordForm
    template_name = "controlcenter/user_form.html"
    success_url = reverse_lazy("controlcenter:user-list")

    @property
    def title(self) -> str:  # type: ignore[override]
        return str(_("Set the password of %(user)s")) % {"user": self.get_target().get_username()}

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        kwargs["user"] = self.get_target()
        return kwargs

    def form_valid(self, form: UserPasswordForm) -> HttpResponse:
        services.user_set_password(user=form.user, password=form.cleaned_data["password1"])
        if form.user.pk == self.request.user.pk:
            # Stays logged in after changing their own password.
            update_session_auth_hash(self.request, form.user)  # type: ignore[arg-type]
        messages.success(
            self.request,
            _("The password of %(user)s was changed.") % {"user": form.user.get_username()},
        )
        return super().form_valid(form)


# --- the Django admin's own login and password pages ---------------------------------------


@method_decorator(login_not_required, name="dispatch")
class AdminLoginView(View):
    """/admin/login/: the admin sends users here when they may not use it.

    Signed in without access (a viewer, an editor, no role): the 403 page, not a redirect
    back to /admin/ (which would loop); otherwise the one throttled login page.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            raise PermissionDenied
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("login") + (f"?{query}" if query else ""))


class AdminPasswordChangeView(View):
    """/admin/password_change/: the audited password page instead of the admin's own form,
    so that every password change goes through services.user_set_password."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("auth.change_user"):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("controlcenter:user-password", args=[request.user.pk]))

    post = get  # the admin's form posts here: nothing is changed, the audited page opens


# --- 設定の反映, 履歴 and 変更履歴 -----------------------------------------------------------


class PublishCrumbsMixin(PageMixin):
    crumbs = (*PageMixin.crumbs, (_("Apply settings"), "controlcenter:publish"))


class PublishView(PermissionRequiredMixin, PageMixin, TemplateView):
    """設定の反映: what the next export changes, what blocks it, and the [設定] button."""

    permission_required = "controlcenter.view_serversettings"
    template_name = "controlcenter/publish.html"
    title = _("Apply settings")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["status"] = policycache.publish_overview()
        context["can_publish"] = self.request.user.has_perm("controlcenter.publish_config")
        context["relay_url"] = reverse("relaypolicy:machine-relay")
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("controlcenter.publish_config"):
            return self.handle_no_permission()
        try:
            report = services.config_export(
                user=request.user,
                request_ip=client_ip(request),
                expected_digest=request.POST.get("plan", ""),
                force=request.POST.get("overwrite") == "on",
            )
        except services.ExportDatabaseError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("controlcenter:publish"))
        _export_message(request, report)
        if report.status == services.STALE:
            # What was reviewed is not what would be written: show the new plan instead.
            return self.render_to_response(self.get_context_data(), status=409)
        if report.export is not None and report.written:
            return HttpResponseRedirect(
                reverse("controlcenter:export-detail", args=[report.export.pk])
            )
        return HttpResponseRedirect(reverse("controlcenter:publish"))


class PublishDiffView(PermissionRequiredMixin, View):
    """The whole difference 設定の反映 shows the start of, as one unified diff file."""

    permission_required = "controlcenter.view_serversettings"

    def get(self, request: HttpRequest) -> HttpResponse:
        _dest, plan, _error = services.export_plan()
        text = "".join(line + "\n" for diff in plan.diffs for line in diff.lines)
        response = HttpResponse(text.encode("utf-8"), content_type="text/x-diff; charset=utf-8")
        name = f"export-{plan.export_number}.diff"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _export_message(request: HttpRequest, report: services.ExportReport) -> None:
    number = report.export.number if report.export else 0
    if report.status == services.STALE:
        messages.error(
            request,
            _(
                "Nothing was written: the policy or the deployed files changed since the page "
                "was shown. Review the new difference and publish again."
            ),
        )
    elif report.status == services.UNCONFIRMED:
        messages.error(
            request,
            _(
                "Nothing was written: %(files)s changed by hand in the export folder. Tick "
                "“Overwrite the files changed by hand” to replace them (their content is kept "
                "in the export history)."
            )
            % {"files": ", ".join(report.plan.overwrites)},
        )
    elif report.written:
        messages.success(
            request,
            _("Export #%(number)s was written to %(dest)s.")
            % {"number": number, "dest": report.dest},
        )
    elif report.status == ExportStatus.REFUSED:
        errors = sum(1 for finding in report.findings if finding.is_error)
        messages.error(
            request,
            ngettext(
                "Nothing was written (export #%(number)s refused): %(count)s error must be "
                "fixed first, see the findings below.",
                "Nothing was written (export #%(number)s refused): %(count)s errors must be "
                "fixed first, see the findings below.",
                errors,
            )
            % {"number": number, "count": errors},
        )
    else:
        messages.error(
            request,
            _("The export failed and the previous files were kept: %(error)s")
            % {"error": report.error},
        )


class ExportListView(PermissionRequiredMixin, PublishCrumbsMixin, ListView[Export]):
    permission_required = "controlcenter.view_export"
    title = _("Export history")
    paginate_by = 50

    def get_queryset(self) -> QuerySet[Export]:
        return Export.objects.select_related("rollback_of").defer(*Export.BULKY_FIELDS)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        current = services.last_export()
        context["current_number"] = current.number if current else None
        context["can_rollback"] = self.request.user.has_perm("controlcenter.publish_config")
        return context


#: Lines of each written file shown on an export's page (the whole file is a download).
FILE_LINES_SHOWN = 200


class ExportDetailView(PermissionRequiredMixin, PublishCrumbsMixin, DetailView[Export]):
    permission_required = "controlcenter.view_export"
    model = Export

    @property
    def title(self) -> str:  # type: ignore[override]
        return str(_("Export #%(number)s")) % {"number": self.object.number}

    def get_breadcrumbs(self) -> list[Crumb]:
        trail = super().get_breadcrumbs()
        trail.insert(-1, (_("Export history"), reverse("controlcenter:export-list")))
        return trail

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.object = self.get_object()
        name = request.GET.get("file")
        if name is not None:  # one written file, whole, as the export wrote it
            if name not in self.object.files:
                raise Http404
            data = publishing.encode_file(name, self.object.files[name])
            response = HttpResponse(data, content_type="application/octet-stream")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return self.render_to_response(self.get_context_data(object=self.object))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        export = self.object
        context["diffs"] = policycache.export_diffs(
            export.pk, Path(export.dest), lambda: services.export_diff_against_now(export)
        )
        # Each written file's first lines; the whole file is a download.
        context["files"] = [
            (name, "\n".join(lines[:FILE_LINES_SHOWN]), len(lines), digest)
            for name, text, digest in export.file_list()
            for lines in [text.splitlines()]
        ]
        context["shown_lines"] = FILE_LINES_SHOWN
        context["changes"] = services.snapshot_changes(
            self.object.snapshot, services.policy_snapshot()
        )
        context["can_rollback"] = (
            self.request.user.has_perm("controlcenter.publish_config")
            and self.object.status == ExportStatus.EXPORTED
        )
        return context


class ExportRollbackView(PermissionRequiredMixin, PublishCrumbsMixin, DetailView[Export]):
    """Rolling back, asked first: what today's policy loses, the files it overwrites, then
    the POST bound to the plan that was shown."""

    permission_required = "controlcenter.publish_config"
    template_name = "controlcenter/export_rollback.html"

    def get_queryset(self) -> QuerySet[Export]:
        return Export.objects.filter(status=ExportStatus.EXPORTED)

    @property
    def title(self) -> str:  # type: ignore[override]
        return str(_("Roll back to export #%(number)s")) % {"number": self.object.number}

    def get_breadcrumbs(self) -> list[Crumb]:
        trail = super().get_breadcrumbs()
        trail[-1:-1] = [
            (_("Export history"), reverse("controlcenter:export-list")),
            (
                str(_("Export #%(number)s")) % {"number": self.object.number},
                reverse("controlcenter:export-detail", args=[self.object.pk]),
            ),
        ]
        return trail

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # The files changed by hand it would overwrite, and the digest the POST is bound to.
        _dest, context["rollback_plan"], context["folder_error"] = services.rollback_plan(
            self.object
        )
        context["delta"] = services.snapshot_delta(services.policy_snapshot(), self.object.snapshot)
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        export = get_object_or_404(Export, pk=pk, status=ExportStatus.EXPORTED)
        self.object = export
        try:
            report = services.config_rollback(
                export_id=export.pk,
                user=request.user,
                request_ip=client_ip(request),
                force=request.POST.get("overwrite") == "on",
                expected_digest=request.POST.get("plan", ""),
            )
        except services.ExportDatabaseError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("controlcenter:export-rollback", args=[pk]))
        except services.RollbackStale:
            messages.error(
                request,
                _(
                    "Nothing was changed: the policy or the deployed files changed since the "
                    "page was shown. Review the rollback again."
                ),
            )
            # What was reviewed is not what would be written: ask again with the new plan.
            return self.render_to_response(self.get_context_data(object=export), status=409)
        except services.RollbackRefused as refused:
            messages.error(
                request,
                _("The rollback to export #%(number)s was refused; nothing changed: %(reason)s")
                % {"number": export.number, "reason": refused},
            )
            return HttpResponseRedirect(reverse("controlcenter:export-detail", args=[pk]))
        assert report.export is not None
        messages.success(
            request,
            _("The policy of export #%(old)s was restored and written as export #%(new)s.")
            % {"old": export.number, "new": report.export.number},
        )
        return HttpResponseRedirect(reverse("controlcenter:export-detail", args=[report.export.pk]))


class AuditFilterForm(forms.Form):
    user = forms.CharField(
        label=_("User"),
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", "---------"), *AuditAction.choices],
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    date_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
    )
    date_to = forms.DateField(
        label=_("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date", "class": "form-control"}),
    )

    def filter(self, queryset: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        """The entries matching the valid filters (dates are Japan time, both inclusive)."""
        if not self.is_valid():
            return queryset.none()
        data = self.cleaned_data
        if data["user"] in (LEGACY_COMMAND_LINE_ACTOR, gettext("(command line)")):
            queryset = queryset.filter(actor_kind=ActorKind.COMMAND_LINE)
        elif data["user"]:
            # One user's entries only: names are unique regardless of case, but older entries
            # may carry a spelling (Admin / admin) that belonged to someone else.
            user = get_user_model().objects.filter(username__iexact=data["user"]).first()
            queryset = queryset.filter(actor_kind=ActorKind.USER)
            if user is None:
                queryset = queryset.filter(actor_name=data["user"])
            else:
                queryset = queryset.filter(
                    Q(actor_id=user.pk) | Q(actor__isnull=True, actor_name=user.get_username())
                )
        if data["action"]:
            queryset = queryset.filter(action=data["action"])
        if data["date_from"]:
            queryset = queryset.filter(created_at__date__gte=data["date_from"])
        if data["date_to"]:
            queryset = queryset.filter(created_at__date__lte=data["date_to"])
        return queryset


class AuditLogView(PermissionRequiredMixin, PageMixin, ListView[AuditEntry]):
    """変更履歴: read-only, filtered by who, what and when."""

    permission_required = "controlcenter.view_auditentry"
    title = _("Change history")
    paginate_by = 100

    def get_form(self) -> AuditFilterForm:
        return AuditFilterForm(self.request.GET or None)

    def get_queryset(self) -> QuerySet[AuditEntry]:
        form = self.get_form()
        entries = AuditEntry.objects.all()  # before/after: the list shows them field by field
        return form.filter(entries) if form.is_bound else entries

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["form"] = self.get_form()
        query = self.request.GET.copy()
        query.pop("page", None)
        context["query_string"] = query.urlencode()
        context["action_labels"] = dict(AuditAction.choices)
        return context


class AuditLogCsvView(AuditLogView):
    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(
            services.audit_log_csv(self.get_queryset()), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        return response
