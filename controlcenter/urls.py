"""Root URLconf. The control center's own pages are the ``controlcenter`` namespace."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from controlcenter import views

controlcenter_patterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("system/", views.SystemMenuView.as_view(), name="system-menu"),
    path("system/settings/", views.ServerSettingsView.as_view(), name="settings"),
    path("system/users/", views.UserListView.as_view(), name="user-list"),
    path("system/users/add/", views.UserCreateView.as_view(), name="user-add"),
    path("system/users/<int:pk>/", views.UserUpdateView.as_view(), name="user-edit"),
    path("system/publish/", views.PublishView.as_view(), name="publish"),
    path("system/publish/diff/", views.PublishDiffView.as_view(), name="publish-diff"),
    path("system/publish/history/", views.ExportListView.as_view(), name="export-list"),
    path(
        "system/publish/history/<int:pk>/",
        views.ExportDetailView.as_view(),
        name="export-detail",
    ),
    path(
        "system/publish/history/<int:pk>/rollback/",
        views.ExportRollbackView.as_view(),
        name="export-rollback",
    ),
    path("system/audit/", views.AuditLogView.as_view(), name="audit-log"),
    path("system/audit/csv/", views.AuditLogCsvView.as_view(), name="audit-log-csv"),
    path(
        "system/users/<int:pk>/password/",
        views.UserPasswordView.as_view(),
        name="user-password",
    ),
]

urlpatterns = [
    path("", include((controlcenter_patterns, "controlcenter"))),
    path("relay/", include("relaypolicy.urls")),
    path("aliases/", include("aliases.urls")),
    path("logs/", include("maillogs.urls")),
    path("system/jobs/", include("jobs.urls")),
    path("system/gateways/", include("gateways.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    # One login page for everything, throttled by axes: the admin's own login redirects here
    # (or shows 403 to a signed-in user the admin refused), and one audited password page.
    path("admin/login/", views.AdminLoginView.as_view()),
    path("admin/password_change/", views.AdminPasswordChangeView.as_view()),
    path("admin/password_change/done/", views.AdminPasswordChangeView.as_view()),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's, downloads).
    path(
        "favicon.ico",
        login_not_required(views.FaviconView.as_view()),
    ),
]
