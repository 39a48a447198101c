"""The storage engines behind every table: one interface, three implementations.

``LSMEngine`` (``lsm.py``) is the durable log-structured merge tree; ``HashLogEngine``
(``hashlog/``) is a durable append-only log with every key in an in-memory hash index;
``MemoryEngine`` (``memory.py``) keeps everything in memory and serves as the reference
model that the shared contract tests hold the durable engines to.
"""
