#!/usr/bin/env bash
# tail-nc.sh JOB [SINCE]: tail.sh through netcat-openbsd's `nc -U` instead of socat, for machines without socat.
#
#   ./tail-nc.sh job1                 # replay from the start, then follow live
#   ./tail-nc.sh job1 42              # resume after seq 41
LTD_VIA=nc exec "$(dirname "$0")/tail.sh" "$@"
