from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from controlcenter.roles import Role
from jobs.models import Job, JobStatus
from jobs.services import job_run, job_start

from .test_services import count_job  # noqa: F401 - registers the tests.count handler

pytestmark = pytest.mark.django_db


def test_a_viewer_sees_the_job_list_and_a_job_with_its_progress(viewer_client) -> None:
    job = job_start(kind="tests.count", title="ログの読み込み", params={"upto": 4})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, done=1, total=4, stage="集計中")

    listing = viewer_client.get(reverse("jobs:list"))
    detail = viewer_client.get(reverse("jobs:detail", args=[job.pk]))

    assertContains(listing, "ログの読み込み")
    assertContains(detail, 'data-percent="25"')
    assertContains(detail, "集計中")
    assertContains(detail, f'hx-get="{reverse("jobs:progress", args=[job.pk])}"')
    # Somebody else's job: a viewer may watch it but not cancel it.
    assertNotContains(detail, 'data-testid="job-cancel"')


def test_the_progress_partial_stops_polling_and_links_the_result(viewer_client) -> None:
    job = job_start(
        kind="tests.count", title="Count", params={"upto": 1}, next_url="/relay/simulate/"
    )
    job_run(job.pk)

    response = viewer_client.get(reverse("jobs:progress", args=[job.pk]))

    assertNotContains(response, "hx-get")
    assertContains(response, 'href="/relay/simulate/"')
    assert "HX-Refresh" not in response


def test_a_finished_job_asks_a_page_that_wants_it_to_reload(viewer_client) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    url = reverse("jobs:progress", args=[job.pk]) + "?reload=1"

    running = viewer_client.get(url, headers={"HX-Request": "true"})
    job_run(job.pk)
    finished = viewer_client.get(url, headers={"HX-Request": "true"})

    assert "HX-Refresh" not in running
    assert finished["HX-Refresh"] == "true"


def test_a_failed_job_shows_its_reason(viewer_client) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="3 行目: 読めません")

    response = viewer_client.get(reverse("jobs:detail", args=[job.pk]))

    assertContains(response, "3 行目: 読めません")


def test_the_user_who_started_a_job_may_cancel_it(make_user, client) -> None:
    viewer = make_user(username="watcher", role=Role.VIEWER)
    client.force_login(viewer)
    job = job_start(kind="tests.count", title="Count", params={"upto": 1}, user=viewer)

    response = client.post(reverse("jobs:cancel", args=[job.pk]))

    job.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.status == JobStatus.CANCELLED


def test_a_viewer_may_not_cancel_somebody_elses_job(viewer_client) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})

    response = viewer_client.post(reverse("jobs:cancel", args=[job.pk]))

    job.refresh_from_db()
    assert (response.status_code, job.status) == (403, JobStatus.QUEUED)


def test_an_editor_may_cancel_any_job_and_is_sent_back_to_a_local_page(editor_client) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})

    back = editor_client.post(reverse("jobs:cancel", args=[job.pk]), {"next": "/aliases/"})
    job.refresh_from_db()
    outside = editor_client.post(reverse("jobs:cancel", args=[job.pk]), {"next": "//evil.example/"})

    assert (back["Location"], job.status) == ("/aliases/", JobStatus.CANCELLED)
    assert outside["Location"] == reverse("jobs:detail", args=[job.pk])


def test_cancel_is_post_only(editor_client) -> None:
    job = job_start(kind="tests.count", title="Count", params={"upto": 1})
    assert editor_client.get(reverse("jobs:cancel", args=[job.pk])).status_code == 405
