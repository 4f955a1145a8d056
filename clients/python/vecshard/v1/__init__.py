"""The raw protocol: gRPC stubs generated from ``proto/vecshard/v1/vecshard.proto``
by ``clients/python/generate.sh`` (do not edit them). Most code wants :class:`vecshard.Client`."""
