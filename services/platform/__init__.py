"""The shared platform every Emporium service is built on.

One way to do each thing: configuration, the gRPC server bootstrap, the interceptor
pipeline, errors, authentication, the database and migrations, metrics, tracing.
"""
