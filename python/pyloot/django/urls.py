"""URL patterns serving pyloot: ``path("_pyloot/", include("pyloot.django.urls"))``."""
from django.urls import re_path

from pyloot.django import views

app_name = "pyloot"
urlpatterns = [re_path(r"^(?P<path>.*)$", views.serve, name="serve")]
