#!/usr/bin/env bash
# ltd-socket.sh: print the socket path the other recipes use, by the same rule as ltctl and the Python client:
# LTD_SOCKET, else /run/ltd/ltd.sock as root, else $XDG_RUNTIME_DIR/ltd/ltd.sock (or /tmp/ltd-$UID/ltd.sock), and
# the system service's /run/ltd/ltd.sock when only that one exists.
set -euo pipefail
system=/run/ltd/ltd.sock
if [ -n "${LTD_SOCKET:-}" ]; then echo "$LTD_SOCKET"; exit 0; fi
if [ "$(id -u)" -eq 0 ]; then echo "$system"; exit 0; fi
if [ -n "${XDG_RUNTIME_DIR:-}" ]; then own=$XDG_RUNTIME_DIR/ltd/ltd.sock; else own=/tmp/ltd-$(id -u)/ltd.sock; fi
if [ ! -e "$own" ] && [ -e "$system" ]; then echo "$system"; else echo "$own"; fi
