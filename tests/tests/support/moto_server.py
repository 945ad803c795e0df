"""Runs moto's server with DynamoDB requests serialised.

moto's threaded server checks a DynamoDB condition and applies the write in separate steps,
without a lock, so two concurrent conditional writes on one item can both succeed (seen as
several winners of one claim, and duplicate message seqs). Real DynamoDB never allows that,
and kefu's adapters rely on it (claims, appends, idempotency keys). This launcher runs moto's
own WSGI application with one lock around every DynamoDB call, so each is atomic as in AWS.
Other services stay concurrent: an SQS long poll must not stall everyone else.

Usage: python moto_server.py [-H HOST] [-p PORT]   (the interpreter must have moto[server])
"""

import argparse
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


class SerialisedDynamoDB:
    """WSGI middleware: DynamoDB requests (JSON protocol, `X-Amz-Target: DynamoDB_*`) run
    one at a time, response body included."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
