#!/usr/bin/env bash
# tail-nc.sh JOB [SINCE]: print job JOB's events as NDJSON (one per line, exactly as ltd sends them), from seq SINCE
# (default 1), until the job's `end` event. The same as tail.sh, with netcat-openbsd's `nc -U` instead of socat.
#
#   ./tail-nc.sh job1                 # replay from the start, then follow live
#   ./tail-nc.sh job1 42              # resume after seq 41
#   LTD_SOCKET=/tmp/ltd.sock ./tail-nc.sh job1
#
# The subscription stays open until `end`, so nc's stdin must stay open too: nc runs as a coprocess and the
# script closes it after the last event (with a plain `printf ... | nc -U`, nc would never exit).
set -euo pipefail
job=${1:?usage: tail-nc.sh JOB [SINCE]}
since=${2:-1}
case $job in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) echo "tail-nc.sh: invalid job name: $job" >&2; exit 2;; esac
case $since in ''|*[!0-9]*) echo "tail-nc.sh: SINCE must be a sequence number" >&2; exit 2;; esac

# The socket, by the same rule as ltctl (see ltd-socket.sh next to this script).
sock=$("$(dirname "$0")/ltd-socket.sh")
[ -S "$sock" ] || { echo "tail-nc.sh: no ltd socket at $sock; start ltd (\`ltd &\` or \`systemctl start ltd\`) or set LTD_SOCKET" >&2; exit 3; }

coproc LTD { exec nc -U "$sock"; }
exec {from_ltd}<&"${LTD[0]}" {to_ltd}>&"${LTD[1]}"
trap 'kill "$LTD_PID" 2>/dev/null || true' EXIT
printf '{"op":"subscribe","job":"%s","from":%s}\n' "$job" "$since" >&"$to_ltd"

status=1  # until we see `end` (or a complete subscription), the stream was cut short
while IFS= read -r line <&"$from_ltd"; do
  case $line in
    *'"type":"subscribed"'*) case $line in *'"complete":true'*) status=0; break;; esac; continue;;
    *'"type":"error"'*) echo "tail-nc.sh: $line" >&2; break;;
  esac
  printf '%s\n' "$line"
  case $line in *'"type":"end"'*) status=0; break;; esac
done
exit "$status"
