"""Arize Phoenix as the tests run it, with the Python of its own environment (scripts/ensure-phoenix).

``serve``: Phoenix's server, on the host and port its environment variables name, and no gRPC
listener (Phoenix opens one on every interface whatever its host setting; the tests send OTLP
over HTTP only). ``spans URL``: every span Phoenix stored, read with Phoenix's own client, as
JSON on stdout.
"""

import json
import sys

from phoenix.client import Client
from phoenix.server.grpc_server import GrpcServer
from phoenix.server.main import main

_start_as_configured = GrpcServer.__init__


def _disabled(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    _start_as_configured(self, *args, **{**kwargs, "disabled": True})


GrpcServer.__init__ = _disabled  # type: ignore[method-assign]

if __name__ == "__main__":
    if sys.argv[1] == "spans":
        spans = Client(base_url=sys.argv[2]).spans.get_spans(project_identifier="default", limit=10_000)
        print(json.dumps(spans, default=str))
    else:
        main()
