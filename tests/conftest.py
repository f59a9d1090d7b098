from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation

from controlcenter import services
from controlcenter.roles import Role, sync_role_groups

PASSWORD = "correct-horse-battery-staple-42"

# Property tests check behaviour, not speed: no per-example deadline (a busy 2-core CI machine
# would otherwise fail them at random); CI runs more examples than a laptop.
hypothesis.settings.register_profile("project", deadline=None)
hypothesis.settings.register_profile("ci", deadline=None, max_examples=200)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") == "true" else "project")


@pytest.fixture(autouse=True)
def _site_language() -> Iterator[None]:
    # LocaleMiddleware leaves the last request's language active in the thread; without this a
    # test that switched to English would change the language of the tests after it.
    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The real hasher is deliberately slow; hundreds of test logins do not need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _role_groups_in_transactional_tests(request: pytest.FixtureRequest) -> None:
    # A transactional test ends by flushing every table, which also removes the role groups
    # the data migrations created: give each transactional test its groups back, whatever
    # ran before it.
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and marker.kwargs.get("transaction", False)
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        sync_role_groups(django_apps)


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(username: str = "editor", role: Role | None = Role.EDITOR) -> User:
        if role is None:
            return User.objects.create_user(username=username, password=PASSWORD)
        return User.objects.get(
            pk=services.user_create(username=username, password=PASSWORD, role=role).pk
        )

    return make


@pytest.fixture
def role_client(make_user: Callable[..., User]) -> Callable[[Role | None], Client]:
    """A test client logged in as a fresh user with ``role`` (None: no role at all)."""

    def make(role: Role | None) -> Client:
        user = make_user(username=f"user-{role.value if role else 'none'}", role=role)
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def editor_client(role_client: Callable[[Role | None], Client]) -> Client:
    return role_client(Role.EDITOR)


@pytest.fixture
def viewer_client(role_client: Callable[[Role | None], Client]) -> Client:
    return role_client(Role.VIEWER)


@pytest.fixture
def administrator_client(role_client: Callable[[Role | None], Client]) -> Client:
    return role_client(Role.ADMINISTRATOR)


@pytest.fixture
def job_worker(transactional_db: None) -> Iterator[None]:
    """A thread that runs queued background jobs, like `manage.py db_worker` (browser tests)."""
    import threading

    from django.db import connection

    from jobs.services import jobs_run_queued

    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                if not jobs_run_queued(limit=1):
                    stop.wait(0.2)
        finally:
            connection.close()

    thread = threading.Thread(target=work, name="job-worker", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)
