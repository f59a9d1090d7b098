from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = _("Background jobs")

    def ready(self) -> None:
        # Every app registers its handlers in <app>/jobs.py; the worker and the web
        # processes must know the same handlers.
        autodiscover_modules("jobs")
