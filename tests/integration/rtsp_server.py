"""A real RTSP server for the client tests: GStreamer's rtsp-server playing one recording.

Run with the *system* python3 (it needs python3-gi and gir1.2-gst-rtsp-server-1.0, which do
not exist on PyPI)::

    /usr/bin/python3 tests/rtsp_server.py AUDIO_FILE PORT [MOUNT]

It prints ``READY rtsp://127.0.0.1:PORT/MOUNT`` once it listens, and serves the file as
Opus over RTP (the codec IP cameras and mixers commonly use, at 48 kHz: so the client must
really resample). Each client that connects gets the recording from its start.
"""

from __future__ import annotations

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    path, port = sys.argv[1], sys.argv[2]
    mount = sys.argv[3] if len(sys.argv) > 3 else "/audio"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! decodebin ! audioconvert ! audioresample'
        " ! opusenc ! rtpopuspay name=pay0 pt=96 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print(f"READY rtsp://127.0.0.1:{port}{mount}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
