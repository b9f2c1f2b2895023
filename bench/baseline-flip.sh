#!/usr/bin/env bash
# baseline-flip.sh NEW OLD: promote slot NEW over slot OLD the way label routing must, since a
# running container's labels cannot change (moby/moby#21721): recreate containers.
#
# Best-case order for the public route: start NEW with the stable labels, wait until Docker
# says it is healthy (Traefik's Docker provider skips starting containers), then stop the old
# stable container gracefully (SIGTERM; the demo backend finishes in-flight requests) and remove
# it. Then give OLD back as the candidate (recreated with candidate labels) so a rollback stays
# possible, and remove NEW's old candidate container. Run by pointsman-load as a flip command;
# needs RUN and NET in the environment (bench/run.sh exports them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
new="$1" old="$2"
: "${RUN:?}" "${NET:?}"

start_baseline stable "$new"
wait_healthy "$(baseline_name "$new" stable)" 30
docker stop -t 10 "$(baseline_name "$old" stable)" >/dev/null
docker rm "$(baseline_name "$old" stable)" >/dev/null
start_baseline candidate "$old"
docker rm -f "$(baseline_name "$new" candidate)" >/dev/null
