"""The CLC v2 client core, framework-free: everything but sending bytes.

``endpoints`` (every call, its path and parser), ``shapes`` (answers), ``errors``, ``retry``
(backoff and the one retry decision), ``tokens`` (renewal), ``settings`` (what a connection
means) and ``client`` (``ClientCore``/``Exchange``, which drive one request). The transports are
``patchflow.hooks.clc`` (worker, requests) and ``patchflow.hooks.clc_async`` (triggerer, aiohttp).
"""
