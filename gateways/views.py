from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import CreateView, DetailView, ListView, UpdateView

from controlcenter.views import PageMixin
from gateways import errors, services
from gateways.forms import ConfirmHostKeyForm, GatewayForm, RetryForm
from gateways.models import Gateway, Publication, SmtpCheck
from gateways.transport import TransportError

READ = "controlcenter.view_serversettings"
CHANGE = "controlcenter.publish_config"
CRUMBS = (*PageMixin.crumbs, (_("Gateways"), "gateways:gateway-list"))


class _Admin(PermissionRequiredMixin):
    permission_required = CHANGE


class GatewayListView(PermissionRequiredMixin, PageMixin, ListView[Gateway]):
    permission_required = READ
    model = Gateway
    title = _("Gateways")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_change"] = self.request.user.has_perm(CHANGE)
        context["publications"] = Publication.objects.all()[:10]
        context["checks"] = SmtpCheck.objects.all()[:5]
        return context


class GatewayCreateView(_Admin, PageMixin, CreateView[Gateway, GatewayForm]):
    model = Gateway
    form_class = GatewayForm
    title = _("Add a gateway")
    crumbs = CRUMBS

    def form_valid(self, form: GatewayForm) -> HttpResponse:
        gateway = services.gateway_save(
            gateway=form.save(commit=False),
            private_key=form.cleaned_data.get("private_key", ""),
            user=self.request.user,
        )
        messages.success(self.request, gettext("%(name)s was saved.") % {"name": gateway.name})
        return HttpResponseRedirect(reverse("gateways:gateway-detail", args=[gateway.pk]))


class GatewayUpdateView(GatewayCreateView, UpdateView[Gateway, GatewayForm]):  # type: ignore[misc]
    title = _("Edit the gateway")


class GatewayDetailView(PermissionRequiredMixin, PageMixin, DetailView[Gateway]):
    permission_required = READ
    model = Gateway
    crumbs = CRUMBS

    @property
    def title(self) -> str:  # type: ignore[override]
        return str(self.object)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_change"] = self.request.user.has_perm(CHANGE)
        context["next_pull"] = services.gateway_logs_next(self.object)
        context["results"] = self.object.results.select_related("publication").order_by("-pk")[:10]
        return context


class GatewayDeleteView(_Admin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        gateway = get_object_or_404(Gateway, pk=pk)
        services.gateway_delete(gateway=gateway, user=request.user)
        messages.success(request, gettext("%(name)s was deleted.") % {"name": gateway.name})
        return HttpResponseRedirect(reverse("gateways:gateway-list"))


class HostKeyFetchView(_Admin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        gateway = get_object_or_404(Gateway, pk=pk)
        try:
            offered = services.gateway_fetch_host_key(gateway=gateway)
        except TransportError as error:
            messages.error(
                request,
                gettext("Cannot fetch the host key: %(e)s")
                % {"e": errors.transport_message(error)},
            )
        else:
            if offered:
                messages.warning(
                    request,
                    gettext(
                        "The server presented the key %(fp)s. Compare it with the server's own "
                        "(ssh-keygen -lf on the gateway) before you confirm it."
                    )
                    % {"fp": offered},
                )
            else:
                messages.success(request, gettext("The server presents the confirmed host key."))
        return HttpResponseRedirect(reverse("gateways:gateway-detail", args=[pk]))


class HostKeyConfirmView(_Admin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        gateway = get_object_or_404(Gateway, pk=pk)
        form = ConfirmHostKeyForm(request.POST)
        if form.is_valid():
            try:
                services.gateway_confirm_host_key(
                    gateway=gateway, fingerprint=form.cleaned_data["fingerprint"], user=request.user
                )
            except services.HostKeyMismatch as error:
                messages.error(request, str(error))
            else:
                messages.success(
                    request,
                    gettext("The host key %(fp)s is confirmed for %(name)s.")
                    % {"fp": gateway.host_key_fingerprint, "name": gateway.name},
                )
        return HttpResponseRedirect(reverse("gateways:gateway-detail", args=[pk]))


class PublishView(_Admin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            publication = services.publication_start(
                user=request.user, force=request.POST.get("overwrite") == "on"
            )
        except services.PublishRefused as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("gateways:gateway-list"))
        return HttpResponseRedirect(reverse("gateways:publication-detail", args=[publication.pk]))


class PublicationDetailView(PermissionRequiredMixin, PageMixin, DetailView[Publication]):
    permission_required = READ
    model = Publication
    crumbs = CRUMBS

    @property
    def title(self) -> str:  # type: ignore[override]
        return gettext("Publication #%(number)s to the gateways") % {"number": self.object.number}

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request") and self.request.GET.get("rows"):
            return ["gateways/includes/results.html"]
        return ["gateways/publication_detail.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["results"] = self.object.latest_results()
        context["attempts"] = self.object.results.order_by("gateway_name", "attempt")
        context["job"] = services.job_for(self.object.job_id)
        context["can_change"] = self.request.user.has_perm(CHANGE)
        context["can_cancel"] = context["can_change"]
        context["retry_form"] = RetryForm()
        return context


class RetryView(_Admin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        publication = get_object_or_404(Publication, pk=pk)
        form = RetryForm(request.POST)
        force = form.is_valid() and form.cleaned_data["overwrite"]
        try:
            count = services.publication_retry(
                publication=publication, user=request.user, force=force
            )
        except services.PublishRefused as error:
            messages.error(request, str(error))
        else:
            messages.info(request, gettext("Retrying %(count)s gateway(s).") % {"count": count})
        return HttpResponseRedirect(reverse("gateways:publication-detail", args=[pk]))


class CheckStartView(_Admin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        publication = Publication.objects.filter(pk=request.POST.get("publication") or 0).first()
        try:
            check = services.smtp_check_start(user=request.user, publication=publication)
        except services.PublishRefused as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("gateways:gateway-list"))
        return HttpResponseRedirect(reverse("gateways:check-detail", args=[check.pk]))


class CheckDetailView(PermissionRequiredMixin, PageMixin, DetailView[SmtpCheck]):
    permission_required = READ
    model = SmtpCheck
    crumbs = CRUMBS
    title = _("Connection test")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["job"] = services.job_for(self.object.job_id)
        context["can_cancel"] = self.request.user.has_perm(CHANGE)
        return context


class LogsPullView(_Admin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        gateway = get_object_or_404(Gateway, pk=pk)
        try:
            job = services.gateway_logs_start(gateway=gateway, user=request.user)
        except services.PublishRefused as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("gateways:gateway-detail", args=[pk]))
        return HttpResponseRedirect(reverse("jobs:detail", args=[job.pk]))
