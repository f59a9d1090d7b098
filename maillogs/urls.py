from django.urls import path

from maillogs import views

app_name = "maillogs"

urlpatterns = [
    path("", views.LogIndexView.as_view(), name="index"),
    path("folder/", views.LogFolderReadView.as_view(), name="folder-read"),
    path("jobs/<uuid:job>/", views.JobResultView.as_view(), name="job-result"),
    path("runs/<int:pk>/", views.LogRunDetailView.as_view(), name="run-detail"),
    path("runs/<int:pk>/delete/", views.LogRunDeleteView.as_view(), name="run-delete"),
    path("replay/", views.ReplayView.as_view(), name="replay"),
    path("replay/impact/", views.ImpactView.as_view(), name="impact"),
    path("migration/", views.MigrationView.as_view(), name="migration"),
    path("migration/draft/", views.MigrationDraftView.as_view(), name="migration-draft"),
    path("migration/wildcard/", views.WildcardRemoveView.as_view(), name="wildcard-remove"),
    path("retry/", views.RetryQueueView.as_view(), name="retry"),
]
