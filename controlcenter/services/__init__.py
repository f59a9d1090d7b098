"""The control center's services, one module per concern, re-exported here.

``from controlcenter import services; services.config_export(...)`` and
``from controlcenter.services import policy_compile`` both work; new code may import from
the submodule that owns a name:

- ``users``: 管理ユーザー (logins, roles, the last-administrator guard);
- ``settings``: 全設定 (saving the server settings and their warnings);
- ``demo``: load_demo;
- ``policy``: the policy as a whole (compile, self-test, lint, the dashboard);
- ``export``: 設定の反映 (export, history, rollback) and the 変更履歴 CSV.
"""

from controlcenter.services.demo import DEMO_DOMAIN, DEMO_LAN, demo_load
from controlcenter.services.export import (
    AUDIT_CSV_COLUMNS,
    DRY_RUN,
    ROLLBACK_KEEPS,
    SETTINGS_SNAPSHOT_FIELDS,
    SNAPSHOT_PARTS,
    STALE,
    UNCONFIRMED,
    ExportDatabaseError,
    ExportReport,
    PublishStatus,
    RollbackRefused,
    RollbackStale,
    audit_log_csv,
    config_export,
    config_rollback,
    export_diff_against_now,
    export_plan,
    export_recover,
    export_source,
    last_export,
    pending_changes,
    policy_fingerprints,
    policy_restore,
    policy_snapshot,
    publish_status,
    rollback_plan,
    snapshot_changes,
    snapshot_delta,
    snapshot_summary,
)
from controlcenter.services.policy import (
    dashboard_status,
    lan_probe_ip,
    policy_compile,
    policy_lint,
    policy_selftest,
)
from controlcenter.services.settings import (
    server_settings_findings,
    server_settings_save,
    server_settings_update,
    settings_state,
)
from controlcenter.services.users import (
    administrators_exist,
    user_create,
    user_role,
    user_set_password,
    user_update,
)

__all__ = [
    "AUDIT_CSV_COLUMNS",
    "DEMO_DOMAIN",
    "DEMO_LAN",
    "DRY_RUN",
    "ROLLBACK_KEEPS",
    "SETTINGS_SNAPSHOT_FIELDS",
    "SNAPSHOT_PARTS",
    "STALE",
    "UNCONFIRMED",
    "ExportDatabaseError",
    "ExportReport",
    "PublishStatus",
    "RollbackRefused",
    "RollbackStale",
    "administrators_exist",
    "audit_log_csv",
    "config_export",
    "config_rollback",
    "dashboard_status",
    "demo_load",
    "export_diff_against_now",
    "export_plan",
    "export_recover",
    "export_source",
    "lan_probe_ip",
    "last_export",
    "pending_changes",
    "policy_compile",
    "policy_fingerprints",
    "policy_lint",
    "policy_restore",
    "policy_selftest",
    "policy_snapshot",
    "publish_status",
    "rollback_plan",
    "server_settings_findings",
    "server_settings_save",
    "server_settings_update",
    "settings_state",
    "snapshot_changes",
    "snapshot_delta",
    "snapshot_summary",
    "user_create",
    "user_role",
    "user_set_password",
    "user_update",
]
