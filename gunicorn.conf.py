"""gunicorn settings for `make serve`; every value can be overridden by the environment."""

import os

bind = os.environ.get("CC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CC_WORKERS", "3"))
threads = int(os.environ.get("CC_THREADS", "2"))
timeout = int(os.environ.get("CC_TIMEOUT", "120"))  # a 100,000-row CSV import takes seconds
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("CC_TRUSTED_PROXIES", "127.0.0.1")
