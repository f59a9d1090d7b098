from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ControlCenterConfig(AppConfig):
    name = "controlcenter"
    verbose_name = _("Control center")
