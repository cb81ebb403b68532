"""The kitchen screen page, mounted at /kds/."""

from django.urls import path

from kds import views_screen

urlpatterns = [
    path("", views_screen.kitchen_screen, name="kds-screen"),
]
