"""What the tests and the benchmarks share: real recordings and how to measure streams
(``evaluation``), and the real server running in a thread (``server_thread``).

Kept out of the runtime package: a deployed server never needs it.
"""
