from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import DetailView, ListView

from controlcenter.views import Crumb, PageMixin
from jobs.models import Job
from jobs.services import job_cancel


class JobCrumbsMixin(PageMixin):
    def get_breadcrumbs(self) -> list[Crumb]:
        trail = super().get_breadcrumbs()
        if self.title != JobListView.title:
            trail.insert(-1, (JobListView.title, reverse("jobs:list")))
        return trail


class JobListView(PermissionRequiredMixin, JobCrumbsMixin, ListView[Job]):
    permission_required = "jobs.view_job"
    title = _("Background jobs")
    paginate_by = 50

    def get_queryset(self) -> QuerySet[Job]:
        return Job.objects.select_related("created_by").defer("result", "params")


class JobDetailView(PermissionRequiredMixin, JobCrumbsMixin, DetailView[Job]):
    permission_required = "jobs.view_job"
    model = Job

    @property
    def title(self) -> str:  # type: ignore[override]
        return self.object.title

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["can_cancel"] = may_cancel(self.request, self.object)
        return context


class JobProgressView(PermissionRequiredMixin, DetailView[Job]):
    """The progress partial the pages poll (htmx); a finished job may ask the page to reload."""

    permission_required = "jobs.view_job"
    model = Job
    template_name = "jobs/includes/progress.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["job"] = self.object
        context["reload"] = self.request.GET.get("reload") == "1"
        context["can_cancel"] = may_cancel(self.request, self.object)
        return context

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        if context["reload"] and self.object.is_finished and self.request.headers.get("HX-Request"):
            response["HX-Refresh"] = "true"
        return response


class JobCancelView(View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: str) -> HttpResponse:
        job = get_object_or_404(Job, pk=pk)
        if not may_stop(request, job):
            raise PermissionDenied
        if job_cancel(job=job):
            messages.info(request, _("Cancellation requested: %(title)s") % {"title": job.title})
        else:
            messages.info(
                request, _("The job had already finished: %(title)s") % {"title": job.title}
            )
        next_url = request.POST.get("next", "")
        if not next_url.startswith("/") or next_url.startswith("//"):
            next_url = reverse("jobs:detail", args=[job.pk])
        return HttpResponseRedirect(next_url)


def may_stop(request: HttpRequest, job: Job) -> bool:
    """The user who started a job may cancel it, and so may anyone who may change jobs."""
    user = request.user
    return user.is_authenticated and (
        job.created_by_id == user.pk or user.has_perm("jobs.change_job")
    )


def may_cancel(request: HttpRequest, job: Job) -> bool:
    return not job.is_finished and may_stop(request, job)
