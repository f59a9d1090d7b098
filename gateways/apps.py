from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = _("Gateways")

    def ready(self) -> None:
        from controlcenter.services import export
        from gateways.services import _reserved_number

        # A publication takes its export number when it starts and records it when it ends.
        if _reserved_number not in export.EXPORT_NUMBER_RESERVATIONS:
            export.EXPORT_NUMBER_RESERVATIONS.append(_reserved_number)
