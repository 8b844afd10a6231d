#!/usr/bin/env bash
# A throw-away PulseAudio daemon for the recorder tests (and for trying `nojoin record` on a
# machine without sound hardware): a null sink as the default speaker and a virtual source as
# the default microphone. Works as root (CI) and as a normal user; binds only a unix socket.
#
#   scripts/pulse-test-env.sh run DIR     # run in the foreground (tests use this and kill it)
#   scripts/pulse-test-env.sh start DIR   # start in the background, print the env to export
#   scripts/pulse-test-env.sh stop DIR
#
# Devices:  nojoin_speaker (default sink; its monitor is the "system audio" loopback)
#           nojoin_micfeed (null sink; play into it to "speak" into the microphone)
#           nojoin_mic     (default source, module-virtual-source over nojoin_micfeed.monitor)
set -euo pipefail
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 run|start|stop DIR" >&2
  exit 2
fi
mkdir -p "$dir/runtime" "$dir/home"
dir=$(cd "$dir" && pwd)
socket="$dir/runtime/native"

write_config() {
  cat >"$dir/nojoin-test.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$socket
load-module module-null-sink sink_name=nojoin_speaker rate=48000 sink_properties=device.description=Nojoin-Test-Speaker
load-module module-null-sink sink_name=nojoin_micfeed rate=48000 sink_properties=device.description=Nojoin-Test-Mic-Feed
load-module module-virtual-source source_name=nojoin_mic master=nojoin_micfeed.monitor channels=1 source_properties=device.description=Nojoin-Test-Microphone
set-default-sink nojoin_speaker
set-default-source nojoin_mic
PA
}

# As root, pulseaudio only warns ("not intended to be run as root") in per-user mode; --system
# would need the pulse user and D-Bus. -n skips the distribution's default.pa (no hardware, no
# D-Bus modules); HOME/XDG_RUNTIME_DIR keep its cookie and state inside DIR.
daemon_args=(-n --daemonize=no --exit-idle-time=-1 --disallow-exit --system=false
  --use-pid-file=no --disable-shm=yes --log-target=stderr --log-level=error
  -F "$dir/nojoin-test.pa")

case "$cmd" in
  run)
    write_config
    export HOME="$dir/home" XDG_RUNTIME_DIR="$dir/runtime"
    exec pulseaudio "${daemon_args[@]}"
    ;;
  start)
    if [ -f "$dir/pulseaudio.pid" ] && kill -0 "$(cat "$dir/pulseaudio.pid")" 2>/dev/null; then
      echo "export PULSE_SERVER=unix:$socket"   # already running for this DIR
      exit 0
    fi
    write_config
    (export HOME="$dir/home" XDG_RUNTIME_DIR="$dir/runtime"
     exec pulseaudio "${daemon_args[@]}" >"$dir/pulseaudio.log" 2>&1) &
    echo $! >"$dir/pulseaudio.pid"
    for _ in $(seq 1 100); do
      if PULSE_SERVER="unix:$socket" pactl info >/dev/null 2>&1; then
        echo "export PULSE_SERVER=unix:$socket"
        exit 0
      fi
      sleep 0.1
    done
    echo "PulseAudio did not start; see $dir/pulseaudio.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pulseaudio.pid" ]; then
      kill "$(cat "$dir/pulseaudio.pid")" 2>/dev/null || true
      rm -f "$dir/pulseaudio.pid"
    fi
    ;;
  *)
    echo "unknown command: $cmd" >&2
    exit 2
    ;;
esac
