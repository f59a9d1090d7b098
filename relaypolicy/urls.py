from django.urls import URLPattern

app_name = "relaypolicy"

urlpatterns: list[URLPattern] = []
