from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import DetailView, TemplateView

from aliases import services as alias_services
from aliases.views import UploadMixin
from controlcenter.views import Crumb, PageMixin
from jobs.models import Job
from jobs.services import job_start
from jobs.views import may_cancel
from maillogs import charts, services
from maillogs.forms import LogUploadForm, MigrationForm
from maillogs.jobs import READ_FOLDER, READ_UPLOAD
from maillogs.models import LogRun

VIEW = "maillogs.view_logrun"
READ = "maillogs.add_logrun"
INSIDE, OUTSIDE, RELAYED, DELIVERED, ABUSE = "#0d6efd", "#fd7e14", "#dc3545", "#198754", "#842029"


class LogPageMixin(PageMixin):
    def get_breadcrumbs(self) -> list[Crumb]:
        trail = super().get_breadcrumbs()
        if self.title != LogIndexView.title:
            trail.insert(-1, (LogIndexView.title, reverse("maillogs:index")))
        return trail


def _jobs(request: HttpRequest) -> list[Job]:
    recent = timezone.now() - timedelta(minutes=15)
    active = Job.objects.filter(kind__in=(READ_UPLOAD, READ_FOLDER)).order_by("-created_at")[:3]
    jobs = [job for job in active if not job.is_finished or (job.finished_at or recent) > recent]
    for job in jobs:
        job.can_cancel = may_cancel(request, job)  # type: ignore[attr-defined]
    return jobs


def _start(request: HttpRequest, *, kind: str, title: str, params: dict[str, Any]) -> Job:
    job = job_start(kind=kind, title=title, params=params, user=request.user)
    # The run's id is known only at the end: the job leads to a page that finds it.
    job.next_url = reverse("maillogs:job-result", args=[job.pk])
    job.save(update_fields=["next_url"])
    return job


class LogIndexView(PermissionRequiredMixin, LogPageMixin, TemplateView):
    permission_required = VIEW
    template_name = "maillogs/index.html"
    title = _("Log analysis")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", LogUploadForm())
        context["runs"] = LogRun.objects.select_related("created_by")[:50]
        context["jobs"] = _jobs(self.request)
        context["work_dir"] = services.work_dir()
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(READ):
            return self.handle_no_permission()
        form = LogUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = services.upload_store(files=form.cleaned_data["logs"], user=request.user)
        names = ", ".join(upload.names)[:150]
        _start(
            request,
            kind=READ_UPLOAD,
            title=gettext("Reading logs: %(names)s") % {"names": names},
            params={"upload_id": upload.pk},
        )
        return HttpResponseRedirect(reverse("maillogs:index"))


class LogFolderReadView(PermissionRequiredMixin, View):
    permission_required = READ

    def post(self, request: HttpRequest) -> HttpResponse:
        if services.work_dir() is None:
            messages.error(
                request, gettext("No mail work folder is configured (CC_MAIL_WORK_DIR).")
            )
        else:
            _start(request, kind=READ_FOLDER, title=gettext("Reading the log folder"), params={})
        return HttpResponseRedirect(reverse("maillogs:index"))


class JobResultView(PermissionRequiredMixin, View):
    """Where a finished read's job leads: the run it stored."""

    permission_required = VIEW

    def get(self, request: HttpRequest, job: str) -> HttpResponse:
        run = LogRun.objects.filter(job_id=job).first()
        if run is None:
            messages.info(request, gettext("That read stored nothing (no new log lines)."))
            return HttpResponseRedirect(reverse("maillogs:index"))
        return HttpResponseRedirect(reverse("maillogs:run-detail", args=[run.pk]))


def _day_charts(run: LogRun) -> list[dict[str, Any]]:
    days = run.section("days")
    labels = [day[5:] for day, *_counts in days]
    hours = [0] * 24
    hours_relayed = [0] * 24
    for _day, hour, mails, relayed, _abuse in run.section("hours"):
        hours[hour] += mails - relayed
        hours_relayed[hour] += relayed
    inside = [counts[2] for counts in days]
    outside = [counts[3] for counts in days]
    relayed = [counts[4] for counts in days]
    delivered = [counts[5] for counts in days]
    abuse = [counts[6] for counts in days]
    return [
        {
            "key": "inside",
            "svg": mark_safe(
                charts.stacked_bars(
                    key="inside",
                    title=gettext("Mail per day: inside and outside clients"),
                    desc=gettext("Stacked bars: mails from inside clients and from outside."),
                    labels=labels,
                    series=[
                        charts.Series(gettext("Inside"), INSIDE, inside),
                        charts.Series(gettext("Outside"), OUTSIDE, outside),
                    ],
                )
            ),
            "headers": [gettext("Day"), gettext("Inside"), gettext("Outside")],
            "rows": list(zip([d[0] for d in days], inside, outside, strict=True)),
        },
        {
            "key": "relayed",
            "svg": mark_safe(
                charts.stacked_bars(
                    key="relayed",
                    title=gettext("Mail per day: delivered inside and relayed outside"),
                    desc=gettext(
                        "Stacked bars: delivered mails, mails relayed for inside clients and "
                        "mails relayed for outside clients (abuse evidence)."
                    ),
                    labels=labels,
                    series=[
                        charts.Series(gettext("Delivered"), DELIVERED, delivered),
                        charts.Series(
                            gettext("Relayed (inside)"),
                            RELAYED,
                            [r - a for r, a in zip(relayed, abuse, strict=True)],
                        ),
                        charts.Series(gettext("Relayed (outside)"), ABUSE, abuse),
                    ],
                )
            ),
            "headers": [
                gettext("Day"),
                gettext("Delivered"),
                gettext("Relayed"),
                gettext("Relayed (outside)"),
            ],
            "rows": list(zip([d[0] for d in days], delivered, relayed, abuse, strict=True)),
        },
        {
            "key": "hours",
            "svg": mark_safe(
                charts.stacked_bars(
                    key="hours",
                    title=gettext("Mail per hour of the day"),
                    desc=gettext("Stacked bars over the whole period: delivered and relayed."),
                    labels=[f"{hour:02d}" for hour in range(24)],
                    series=[
                        charts.Series(gettext("Delivered"), DELIVERED, hours),
                        charts.Series(gettext("Relayed"), RELAYED, hours_relayed),
                    ],
                )
            ),
            "headers": [gettext("Hour"), gettext("Delivered"), gettext("Relayed")],
            "rows": [(f"{h:02d}:00", hours[h], hours_relayed[h]) for h in range(24)],
        },
    ]


class LogRunDetailView(PermissionRequiredMixin, LogPageMixin, DetailView[LogRun]):
    permission_required = VIEW
    model = LogRun
    title = _("Log read")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        run = self.object
        context["charts"] = _day_charts(run)
        context["clients"] = run.clients.order_by("-mails", "client_ip")[:20]
        context["sender_domains"] = run.sender_domains.all()[:20]
        context["sessions_kept"] = run.sessions.count()
        context["recipients_kept"] = run.recipients.count()
        return context


class LogRunDeleteView(PermissionRequiredMixin, View):
    permission_required = "maillogs.delete_logrun"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        services.run_delete(run=get_object_or_404(LogRun, pk=pk))
        messages.success(request, gettext("The stored read was deleted."))
        return HttpResponseRedirect(reverse("maillogs:index"))


class ReplayView(PermissionRequiredMixin, LogPageMixin, TemplateView):
    permission_required = VIEW
    template_name = "maillogs/replay.html"
    title = _("Replay with this policy")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["has_logs"] = LogRun.objects.exists()
        if context["has_logs"]:
            context["report"] = services.replay_report()
        return context


class ImpactView(PermissionRequiredMixin, TemplateView):
    """The replay's summary for 設定の反映 (loaded by htmx, so the page stays fast)."""

    permission_required = VIEW
    template_name = "maillogs/includes/impact_summary.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if LogRun.objects.exists():
            context["report"] = services.replay_report()
        return context


class MigrationView(PermissionRequiredMixin, LogPageMixin, TemplateView):
    permission_required = VIEW
    template_name = "maillogs/migration.html"
    title = _("Move to one alias per address")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = MigrationForm(self.request.GET or None)
        min_mails = form.cleaned_data["min_mails"] if form.is_valid() else 1
        context["form"] = form
        context["min_mails"] = min_mails
        context["has_logs"] = LogRun.objects.exists()
        context["plan"] = services.migration_plan(min_mails=min_mails)
        context["wildcards"] = services.wildcards()
        return context


class MigrationDraftView(UploadMixin, View):
    """The per-address aliases sent to the CSV upload's preview (every check applies)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        form = MigrationForm(request.POST)
        min_mails = form.cleaned_data["min_mails"] if form.is_valid() else 1
        upload = services.migration_draft(user=request.user, min_mails=min_mails)
        if upload is None:
            messages.info(request, gettext("Every address that received mail has its own alias."))
            return HttpResponseRedirect(reverse("maillogs:migration"))
        preview = alias_services.upload_preview(token=upload.token, user=request.user)
        return self.show_preview(preview)


class WildcardRemoveView(PermissionRequiredMixin, LogPageMixin, TemplateView):
    permission_required = "aliases.delete_alias"
    template_name = "maillogs/wildcard_confirm.html"
    title = _("Remove the wildcard alias")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        pattern = self.request.GET.get("pattern", "")
        if pattern not in {alias.pattern for alias in services.wildcards()}:
            raise Http404
        plan = services.migration_plan()
        context["pattern"] = pattern
        context["waiting"] = [draft for draft in plan.drafts if draft.via == pattern]
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        pattern = request.POST.get("pattern", "")
        try:
            deleted = services.wildcard_remove(pattern=pattern)
        except services.WildcardStillNeeded:
            messages.error(
                request,
                gettext(
                    "Some addresses that received mail still depend on %(pattern)s: import "
                    "their aliases first."
                )
                % {"pattern": pattern},
            )
            return HttpResponseRedirect(reverse("maillogs:migration"))
        if deleted:
            messages.success(
                request,
                gettext("%(pattern)s was removed. Export the settings to apply it.")
                % {"pattern": pattern},
            )
        return HttpResponseRedirect(reverse("maillogs:migration"))


class RetryQueueView(PermissionRequiredMixin, LogPageMixin, TemplateView):
    permission_required = VIEW
    template_name = "maillogs/retry.html"
    title = _("Retry backlog")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["work_dir"] = services.work_dir()
        context["queue"] = services.retry_queue()
        return context
