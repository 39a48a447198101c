"""The storage engines behind every table: one interface, two implementations.

``LSMEngine`` (``lsm.py``) is the durable log-structured merge tree; ``MemoryEngine``
(``memory.py``) keeps everything in memory and serves as the reference model that the
shared contract tests hold the LSM engine to.
"""
