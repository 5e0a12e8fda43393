#!/usr/bin/env bash
# The one-command GPU reproduction now lives in reproduce_gpu/ (run.sh, run.py, its phases); this path still runs it.
exec "$(dirname "${BASH_SOURCE[0]}")/../reproduce_gpu/run.sh" "$@"
