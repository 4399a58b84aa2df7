"""A minimal Django project using django_wsgiauth: one settings module, three views."""
