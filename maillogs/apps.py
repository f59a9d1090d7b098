from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MaillogsConfig(AppConfig):
    name = "maillogs"
    verbose_name = _("Log analysis")
    default_auto_field = "django.db.models.BigAutoField"
