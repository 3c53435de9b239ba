#!/usr/bin/env bash
# tail.sh JOB [SINCE]: print job JOB's events as NDJSON (one per line, exactly as ltd sends them), from seq SINCE
# (default 1), until the job's `end` event. Needs bash and socat (or, with LTD_VIA=nc, netcat-openbsd's `nc -U`).
#
#   ./tail.sh job1                 # replay from the start, then follow live
#   ./tail.sh job1 42              # resume after seq 41
#   LTD_SOCKET=/tmp/ltd.sock ./tail.sh job1
#   LTD_VIA=nc ./tail.sh job1       # the same through nc -U (what tail-nc.sh does)
#
# The subscription stays open until `end`, so the connector's stdin must stay open too: socat (or nc) runs as a
# coprocess and the script closes it after the last event (a plain `printf ... | socat` would hang up as soon as printf
# finished, and `printf ... | nc -U` would never exit).
set -euo pipefail
me=${0##*/}
job=${1:?usage: $me JOB [SINCE]}
since=${2:-1}
case $job in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9._-]*) echo "$me: invalid job name: $job" >&2; exit 2;; esac
case $since in ''|*[!0-9]*) echo "$me: SINCE must be a sequence number" >&2; exit 2;; esac

# The socket, by the same rule as ltctl (see ltd-socket.sh next to this script).
sock=$("$(dirname "$0")/ltd-socket.sh")
[ -S "$sock" ] || { echo "$me: no ltd socket at $sock; start ltd (\`ltd &\` or \`systemctl start ltd\`) or set LTD_SOCKET" >&2; exit 3; }

case ${LTD_VIA:-socat} in
  socat) coproc LTD { exec socat - "UNIX-CONNECT:$sock"; } ;;
  nc) coproc LTD { exec nc -U "$sock"; } ;;
  *) echo "$me: LTD_VIA must be socat or nc" >&2; exit 2;;
esac
exec {from_ltd}<&"${LTD[0]}" {to_ltd}>&"${LTD[1]}"
trap 'kill "$LTD_PID" 2>/dev/null || true' EXIT
printf '{"op":"subscribe","job":"%s","from":%s}\n' "$job" "$since" >&"$to_ltd"

status=1  # until we see `end` (or a complete subscription), the stream was cut short
while IFS= read -r line <&"$from_ltd"; do
  case $line in
    *'"type":"subscribed"'*) case $line in *'"complete":true'*) status=0; break;; esac; continue;;
    *'"type":"error"'*) echo "$me: $line" >&2; break;;
  esac
  printf '%s\n' "$line"
  case $line in *'"type":"end"'*) status=0; break;; esac
done
exit "$status"
