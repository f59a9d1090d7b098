from django.urls import path

from relaypolicy import views

app_name = "relaypolicy"

urlpatterns = [
    path("", views.RestrictionView.as_view(), name="restriction"),
    path("machines/", views.MachineRelayView.as_view(), name="machine-relay"),
    path("machines/effect.dat/", views.EffectTextView.as_view(), name="effect-text"),
    path("machines/import/", views.ImportView.as_view(), name="import"),
    path("test/", views.SimulateView.as_view(), name="simulate"),
    path("test/selftest/", views.SelftestView.as_view(), name="selftest"),
]
