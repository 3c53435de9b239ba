#!/usr/bin/env bash
# steps-tsv.sh JOB: one tab-separated line per optimizer step of job JOB, for a spreadsheet or `column -t`:
# iteration, w and b after the step, Keras's running RMSE (measured before the update), validation RMSE (after it).
# Needs tail.sh (next to this script, so socat) and jq.
#
#   ./steps-tsv.sh job1 | column -t
#
# The jq recipe on its own, for any NDJSON stream (`ltctl tail --json job1`, ./tail.sh job1, a saved file):
#   jq -r 'select(.type == "step") | [.iteration, .w_after, .b_after, .rmse, .val_rmse] | @tsv'
set -euo pipefail
job=${1:?usage: steps-tsv.sh JOB}
here=$(cd "$(dirname "$0")" && pwd)
printf 'iteration\tw\tb\trmse\tval_rmse\n'
"$here/tail.sh" "$job" | jq -r 'select(.type == "step") | [.iteration, .w_after, .b_after, .rmse, .val_rmse] | @tsv'
