"""A minimal Django project for the tests: pyloot.django installed, pyloot at
/_pyloot/, a /leak view. PYLOOT_TEST_TOKEN sets the token; a request with
the header X-Test-Staff: 1 is let in by the allow callable (which checks it
got a Django request)."""
import os

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "djangoproj.urls"
INSTALLED_APPS = ["pyloot.django"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"]
DATABASES = {}
USE_TZ = True
WSGI_APPLICATION = "djangoproj.wsgi.application"

PYLOOT = {
    "interval": float(os.environ.get("PYLOOT_TEST_INTERVAL", "1")),
    "token": os.environ.get("PYLOOT_TEST_TOKEN") or None,
    "allow": "djangoproj.views.staff_only",
}
