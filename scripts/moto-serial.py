"""moto's server (S3 + DynamoDB) with one request handled at a time.

moto checks a condition and then writes without a lock: two racing conditional creates
(S3 `If-None-Match: *`, a DynamoDB `attribute_not_exists` put) can both succeed when its
threads interleave, which a real store never allows and the race tests would report.
This runs moto's own WSGI application in its threaded werkzeug server, as `moto_server`
does, but takes one lock around each request, so every check-and-write is atomic.
Connections still get their own threads (idle keep-alive clients block nobody), and a
request's body is read before the lock is taken.

The default of `scripts/test-services.sh` since a whole fresh-clone `.ci/run` passed with it
(2026-12-01, 18 min); `VECSHARD_MOTO_SERIAL=0` runs plain `moto_server` instead.

    python moto-serial.py HOST PORT
"""

import io
import os
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        # The request body is read before the lock: a client that stalls mid-upload (a
        # SIGSTOPped test process) must not hold up everyone else.
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        with lock:
            # The response is produced under the lock and sent after it.
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
