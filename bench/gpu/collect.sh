#!/usr/bin/env bash
# Wait (at most $1 seconds) for the benchmarks started by launch.sh, then copy their
# results and logs under $OUT and print the end of each log.
set -uo pipefail
deadline=$(( $(date +%s) + ${1:-0} ))
cd /tmp/gpu-runs
while [ "$(date +%s)" -lt "$deadline" ]; do
  running=0
  for log in *.log; do [ -e "${log%.log}.rc" ] || running=1; done
  [ "$running" = 0 ] && break
  sleep 5
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for log in *.log; do
  name=${log%.log}
  echo "== $name rc=$(cat "$name.rc" 2>/dev/null || echo running)"
  tail -n 25 "$log"
done
if [ -n "${OUT:-}" ]; then
  cp ./*.json "$OUT"/ 2>/dev/null
  tar czf "$OUT/logs.tar.gz" ./*.log
fi
