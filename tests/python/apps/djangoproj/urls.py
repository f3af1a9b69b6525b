from django.urls import include, path

from djangoproj import views

urlpatterns = [
    path("leak", views.leak),
    path("pid", views.pid),
    path("_pyloot/", include("pyloot.django.urls")),
]
