from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from aliases.models import Alias
from controlcenter.models import ServerSettings
from jobs.models import Job, JobStatus
from jobs.services import job_run
from maillogs.models import LogRun
from tests.bench.loggen import INNER
from tests.maillogs.conftest import harden

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploaded(open_gateway, archive, editor_client, settings, tmp_path):
    settings.CC_LOG_UPLOAD_DIR = tmp_path / "uploads"
    path, truth = archive
    response = editor_client.post(
        reverse("maillogs:index"),
        {"logs": [SimpleUploadedFile("logs.zip", path.read_bytes())]},
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.next_url == reverse("maillogs:job-result", args=[job.pk])
    finished = job_run(job.pk)
    assert finished is not None
    assert finished.status == JobStatus.SUCCEEDED
    return LogRun.objects.get(), truth


def test_index_shows_the_upload_form_and_the_jobs(editor_client, uploaded):
    response = editor_client.get(reverse("maillogs:index"))
    assertContains(response, 'data-testid="log-upload-form"')
    assertContains(response, 'data-testid="job-progress"')
    assertContains(response, 'data-testid="abuse-banner"')


def test_job_result_leads_to_the_run(editor_client, uploaded):
    run, _truth = uploaded
    job = Job.objects.get()
    response = editor_client.get(reverse("maillogs:job-result", args=[job.pk]))
    assert response["Location"] == reverse("maillogs:run-detail", args=[run.pk])


def test_run_detail_shows_the_signs_and_the_charts(viewer_client, uploaded):
    run, truth = uploaded
    response = viewer_client.get(reverse("maillogs:run-detail", args=[run.pk]))
    assertContains(response, 'data-testid="chart-inside"')
    assertContains(response, 'data-testid="chart-relayed"')
    assertContains(response, 'data-testid="chart-hours"')
    assertContains(response, 'data-testid="chart-table-relayed"')
    assertContains(response, 'data-testid="abuse-clients"')
    assertContains(response, "185.220.")
    assertContains(response, f'data-testid="run-mails">{truth.mails}<')


def test_dashboard_banner_names_the_period(viewer_client, uploaded):
    run, _truth = uploaded
    response = viewer_client.get(reverse("controlcenter:dashboard"))
    assertContains(response, 'data-testid="abuse-banner"')
    assertContains(response, run.first_seen)
    assertContains(response, run.last_seen)


def test_no_banner_without_abuse(viewer_client, db):
    response = viewer_client.get(reverse("controlcenter:dashboard"))
    assertNotContains(response, 'data-testid="abuse-banner"')


def test_viewer_cannot_upload(viewer_client, db):
    response = viewer_client.post(reverse("maillogs:index"), {})
    assert response.status_code == 403
    assert viewer_client.post(reverse("maillogs:folder-read")).status_code == 403


def test_upload_without_files_is_refused_with_the_field(editor_client, db):
    response = editor_client.post(reverse("maillogs:index"), {})
    assert response.status_code == 400
    assert not Job.objects.exists()


def test_replay_page_and_the_publish_impact(administrator_client, uploaded):
    harden()
    response = administrator_client.get(reverse("maillogs:replay"))
    assertContains(response, 'data-testid="replay-safe"')
    assertContains(response, 'data-hint="smtp-auth"')
    assertContains(response, "staff007@example.co.jp")
    publish = administrator_client.get(reverse("controlcenter:publish"))
    assertContains(publish, reverse("maillogs:impact"))
    impact = administrator_client.get(reverse("maillogs:impact"))
    assertContains(impact, 'data-testid="impact-summary"')


def test_migration_draft_opens_the_csv_preview(editor_client, uploaded):
    harden()
    server = ServerSettings.load()
    server.licence = "250"
    server.save()
    page = editor_client.get(reverse("maillogs:migration"))
    assertContains(page, 'data-tier-now="250"')
    response = editor_client.post(reverse("maillogs:migration-draft"), {"min_mails": "1"})
    assertTemplateUsed(response, "aliases/alias_upload.html")
    assertContains(response, 'data-testid="preview-result"')
    assertContains(response, 'data-testid="confirm"')
    assertContains(response, "aliases-from-logs.csv")


def test_wildcard_removal_waits_for_the_aliases(editor_client, uploaded):
    url = reverse("maillogs:wildcard-remove") + f"?pattern=*@{INNER}"
    page = editor_client.get(url)
    assertContains(page, 'data-testid="wildcard-waiting"')
    response = editor_client.post(reverse("maillogs:wildcard-remove"), {"pattern": f"*@{INNER}"})
    assert response.status_code == 302
    assert Alias.objects.filter(pattern=f"*@{INNER}").exists()
    assert editor_client.get(reverse("maillogs:wildcard-remove") + "?pattern=x").status_code == 404


def test_retry_page(viewer_client, settings, tmp_path, db):
    settings.CC_MAIL_WORK_DIR = str(tmp_path)
    (tmp_path / "domains" / "victim.example").mkdir(parents=True)
    (tmp_path / "domains" / "victim.example" / "1.RCP").write_bytes(b"abc")
    response = viewer_client.get(reverse("maillogs:retry"))
    assertContains(response, "victim.example")


def test_delete_run(editor_client, uploaded):
    run, _truth = uploaded
    response = editor_client.post(reverse("maillogs:run-delete", args=[run.pk]))
    assert response.status_code == 302
    assert not LogRun.objects.exists()


def test_system_menu_lists_log_analysis(viewer_client, db):
    response = viewer_client.get(reverse("controlcenter:system-menu"))
    assertContains(response, reverse("maillogs:index"))
