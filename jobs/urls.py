from django.urls import path

from jobs import views

app_name = "jobs"

urlpatterns = [
    path("", views.JobListView.as_view(), name="list"),
    path("<uuid:pk>/", views.JobDetailView.as_view(), name="detail"),
    path("<uuid:pk>/progress/", views.JobProgressView.as_view(), name="progress"),
    path("<uuid:pk>/cancel/", views.JobCancelView.as_view(), name="cancel"),
]
