from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ControlCenterConfig(AppConfig):
    name = "controlcenter"
    verbose_name = _("Control center")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from controlcenter import audit

        # Logins are recorded in the audit log (recording only; see controlcenter.audit).
        user_logged_in.connect(audit.record_login, dispatch_uid="controlcenter.audit.login")
        user_login_failed.connect(
            audit.record_login_failed, dispatch_uid="controlcenter.audit.login_failed"
        )
