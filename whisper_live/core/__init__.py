"""The sans-I/O streaming core: feed PCM in, get decode requests and events out.

Nothing here opens a socket or loads a model; the engine runs the decodes and a face
moves the bytes, as h11 leaves the network to its caller.
"""
