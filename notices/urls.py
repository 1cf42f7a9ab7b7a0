"""Under /t/<team>/."""

from django.urls import path

from notices import views, views_chat

urlpatterns = [
    path("notices/", views.delivery_log, name="delivery_log"),
    path("notices/<int:pk>/resend/", views.notice_resend_view, name="notice_resend"),
    path("chat/", views_chat.chat_connections, name="chat_connections"),
    path("chat/<int:pk>/", views_chat.chat_connection_edit, name="chat_connection_edit"),
    path("chat/<int:pk>/test/", views_chat.chat_connection_test, name="chat_connection_test"),
    path(
        "chat/<int:pk>/delete/",
        views_chat.chat_connection_disconnect,
        name="chat_connection_delete",
    ),
]
