#!/usr/bin/env bash
# System packages the test suite drives for real: ffmpeg (HLS/RTSP streams), GStreamer's
# RTSP server, PulseAudio + PortAudio (a real audio device for the microphone client; its headers
# build PyAudio for upstream WhisperLive's client in tests/integration/test_upstream_client.py) and
# Chromium (the browser page), HAProxy (the load balancer in front of several replicas in
# tests/integration/test_scaleout.py). Installs only what is missing; needs root or sudo.
set -euo pipefail
want=(ffmpeg haproxy libportaudio2 portaudio19-dev libasound2-plugins pulseaudio pulseaudio-utils chromium gstreamer1.0-rtsp
      gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
