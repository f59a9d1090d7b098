from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RelayPolicyConfig(AppConfig):
    name = "relaypolicy"
    verbose_name = _("Relay restriction")
