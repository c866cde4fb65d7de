import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bitrecs_site.settings")

django_application = get_wsgi_application()

# Imported once Django is set up: fresh cached widget answers are sent before Django's handler (see its docstring).
from recommendations.fast_path import WidgetFastPath  # noqa: E402

application = WidgetFastPath(django_application)
