"""The audit trail's URLs, under /t/<team>/."""

from django.urls import path

from teams import audit_views

urlpatterns = [
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit.csv", audit_views.audit_csv, name="audit_csv"),
]
