from django.urls import URLPattern

app_name = "aliases"

urlpatterns: list[URLPattern] = []
