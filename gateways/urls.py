from django.urls import path

from gateways import views

app_name = "gateways"

urlpatterns = [
    path("", views.GatewayListView.as_view(), name="gateway-list"),
    path("add/", views.GatewayCreateView.as_view(), name="gateway-add"),
    path("<int:pk>/", views.GatewayDetailView.as_view(), name="gateway-detail"),
    path("<int:pk>/edit/", views.GatewayUpdateView.as_view(), name="gateway-edit"),
    path("<int:pk>/delete/", views.GatewayDeleteView.as_view(), name="gateway-delete"),
    path("<int:pk>/host-key/fetch/", views.HostKeyFetchView.as_view(), name="host-key-fetch"),
    path("<int:pk>/host-key/confirm/", views.HostKeyConfirmView.as_view(), name="host-key-confirm"),
    path("<int:pk>/logs/", views.LogsPullView.as_view(), name="logs-pull"),
    path("publish/", views.PublishView.as_view(), name="publish"),
    path(
        "publications/<int:pk>/",
        views.PublicationDetailView.as_view(),
        name="publication-detail",
    ),
    path("publications/<int:pk>/retry/", views.RetryView.as_view(), name="publication-retry"),
    path("checks/", views.CheckStartView.as_view(), name="check-start"),
    path("checks/<int:pk>/", views.CheckDetailView.as_view(), name="check-detail"),
]
