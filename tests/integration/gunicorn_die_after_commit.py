"""gunicorn settings for the crash tests: deploy/gunicorn.conf.py, plus a worker that kills itself
with SIGKILL right after a request's transaction commits, before the response leaves, when the
request carries the header `X-Test-Die-After-Commit: 1` (the worst moment for an idempotent POST:
its effect is durable and its client never hears of it). Never used outside the tests."""

import os
import runpy
import signal
from pathlib import Path

HEADER = "X-Test-Die-After-Commit"
_deploy = runpy.run_path(str(Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py"))
globals().update({k: v for k, v in _deploy.items() if not k.startswith("_")})


def post_worker_init(worker):
    _deploy["post_worker_init"](worker)
    from flask import has_request_context, request
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def die(_session):
        if has_request_context() and request.headers.get(HEADER) == "1":
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Session, "after_commit", die)
