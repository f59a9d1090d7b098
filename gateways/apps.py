from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = _("Gateways")

    def ready(self) -> None:
        import logging

        import asyncssh

        from controlcenter.services import export

        # asyncssh logs every channel at INFO: keep the service's log for what matters.
        asyncssh.set_log_level(logging.WARNING)
        asyncssh.set_sftp_log_level(logging.WARNING)
        from gateways.services import _reserved_number

        # A publication takes its export number when it starts and records it when it ends.
        if _reserved_number not in export.EXPORT_NUMBER_RESERVATIONS:
            export.EXPORT_NUMBER_RESERVATIONS.append(_reserved_number)
