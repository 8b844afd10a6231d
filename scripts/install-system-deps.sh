#!/usr/bin/env bash
# Installs the Debian packages Nojoin's tests and tools need, only those missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
PKGS=(
  espeak-ng sox libsox-fmt-all ffmpeg libsndfile1      # test speech, conversion, soundfile
  pulseaudio pulseaudio-utils                          # virtual mic + speaker loopback for recorder tests
  redis-server                                         # Celery broker for remote-processing tests
  xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-shape0
  libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-xkb1
  libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core   # Qt offscreen / Xvfb
  libpulse-mainloop-glib0 libasound2                   # QtMultimedia playback
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "Missing Debian packages: ${missing[*]}. Install them as root (apt-get install ...)." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
