import gc
import os

from django.core.asgi import get_asgi_application

from config import log_redaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

# After Django's LOGGING and uvicorn's own logging set-up (which ran before this import): the
# links that are credentials never reach the access log or Django's request log.
log_redaction.install()

# Everything loaded so far (Django, the apps, their libraries: ~100,000 objects) lives as long
# as the process. Frozen, the collector stops walking it: a full collection took 45-60 ms here,
# a pause that landed on whichever request triggered it (Python docs, gc.freeze).
gc.freeze()
