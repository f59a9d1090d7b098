from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse, reverse_lazy
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView, ListView, TemplateView, UpdateView

from controlcenter import services
from controlcenter.forms import (
    ServerSettingsForm,
    UserCreateForm,
    UserPasswordForm,
    UserUpdateForm,
)
from controlcenter.models import ServerSettings
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
        context["breadcrumbs"] = self.get_breadcrumbs()
        return context


class DashboardView(PageMixin, TemplateView):
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

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_change"] = self.request.user.has_perm("controlcenter.change_serversettings")
        context["export_default"] = ServerSettings(export_dir="").export_path
        return context

    def form_valid(self, form: ServerSettingsForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, _("The server settings were saved."))
        if self.object.is_gateway and self.object.accounts == 0:
            messages.warning(
                self.request,
                _(
                    "A gateway needs at least one (dummy) mailbox account, or the product "
                    "demands the unlimited edition."
                ),
            )
        return response


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
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.success(self.request, _("%(user)s was saved.") % {"user": target.get_username()})
        return HttpResponseRedirect(self.get_success_url())


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
        messages.success(
            self.request,
            _("The password of %(user)s was changed.") % {"user": form.user.get_username()},
        )
        return super().form_valid(form)
