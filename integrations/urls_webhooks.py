"""Webhook endpoints the trackers call, under /hooks/ (no session: the signature is the proof)."""

from django.urls import path

from integrations import webhooks

urlpatterns = [
    path("jira/<str:token>/", webhooks.webhook_jira, name="webhook_jira"),
    path("azure/<str:token>/", webhooks.webhook_azure, name="webhook_azure"),
]
