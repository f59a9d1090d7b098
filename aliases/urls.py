from django.urls import path

from aliases import views

app_name = "aliases"

urlpatterns = [
    path("", views.AliasListView.as_view(), name="alias-list"),
    path("add/", views.AliasCreateView.as_view(), name="alias-add"),
    path("<int:pk>/", views.AliasUpdateView.as_view(), name="alias-edit"),
    path("<int:pk>/delete/", views.AliasDeleteView.as_view(), name="alias-delete"),
    path("<int:pk>/up/", views.AliasMoveView.as_view(direction="up"), name="alias-move-up"),
    path("<int:pk>/down/", views.AliasMoveView.as_view(direction="down"), name="alias-move-down"),
    path("<int:pk>/move/", views.AliasMoveToView.as_view(), name="alias-move-to"),
    path(
        "<int:pk>/above-wildcard/",
        views.AliasMoveAboveWildcardView.as_view(),
        name="alias-move-above-wildcard",
    ),
    path("delete/", views.AliasBulkDeleteView.as_view(), name="alias-bulk-delete"),
    path("aliases.csv", views.AliasExportView.as_view(), name="alias-export"),
    path("upload/", views.AliasUploadView.as_view(), name="alias-upload"),
    path("upload/confirm/", views.AliasUploadConfirmView.as_view(), name="alias-upload-confirm"),
    path(
        "upload/<str:token>/report.csv",
        views.AliasUploadReportView.as_view(),
        name="alias-upload-report",
    ),
    path("domains/", views.LocalDomainListView.as_view(), name="domain-list"),
    path("domains/add/", views.LocalDomainCreateView.as_view(), name="domain-add"),
    path("domains/<int:pk>/delete/", views.LocalDomainDeleteView.as_view(), name="domain-delete"),
]
