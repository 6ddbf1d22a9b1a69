"""The loader's Python worker: ``python3 -m aiges.runtime --wrapper <dir-or-file>``.

It imports the wrapper once and serves the loader's binary worker protocol on the socket
inherited in the descriptor named by ASF_WORKER_FD.
"""
