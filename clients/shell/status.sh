#!/usr/bin/env bash
# status.sh [JOB]: print job JOB's status reply (or, without JOB, the list of all jobs) as one JSON line.
# Needs bash and socat. Pipe it to `jq` to pick fields:
#
#   ./status.sh job1 | jq '.status | {state, iteration, epoch, rmse, val_rmse}'
#   ./status.sh | jq -r '.jobs[] | [.job, .state, .iteration] | @tsv'
set -euo pipefail
job=${1:-}
case $job in *[!A-Za-z0-9._-]*|[!A-Za-z0-9]*) echo "status.sh: invalid job name: $job" >&2; exit 2;; esac

# The socket, by the same rule as ltctl (see ltd-socket.sh next to this script).
sock=$("$(dirname "$0")/ltd-socket.sh")
[ -S "$sock" ] || { echo "status.sh: no ltd socket at $sock; start ltd (\`ltd &\` or \`systemctl start ltd\`) or set LTD_SOCKET" >&2; exit 3; }

if [ -n "$job" ]; then request='{"op":"status","job":"'"$job"'"}'; else request='{"op":"list"}'; fi

# One request, one reply line. socat keeps the connection until we have read the reply, then we close it.
coproc LTD { exec socat - "UNIX-CONNECT:$sock"; }
exec {from_ltd}<&"${LTD[0]}" {to_ltd}>&"${LTD[1]}"
trap 'kill "$LTD_PID" 2>/dev/null || true' EXIT
printf '%s\n' "$request" >&"$to_ltd"
IFS= read -r reply <&"$from_ltd" || { echo "status.sh: ltd closed the connection without a reply" >&2; exit 1; }
case $reply in *'"type":"error"'*) echo "status.sh: $reply" >&2; exit 1;; esac
printf '%s\n' "$reply"
