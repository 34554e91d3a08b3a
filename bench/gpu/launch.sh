#!/usr/bin/env bash
# Start one benchmark on the GPU machine in its own session, so that it outlives the
# `device` call that started it: bench/gpu/launch.sh NAME accuracy|loop ARGS...
# Log in /tmp/gpu-runs/NAME.log, exit status in NAME.rc, results in NAME.json.
#
# Datasets travel as carried folders under .gpu/, and a carried folder is gone from
# the machine after a later call that does not name it (seen 2026-11-30: four 5-minute
# runs lost their data before scoring `test`). So every folder in .gpu/ is first copied
# to /tmp/gpu-data/, which stays while the machine is held: give --data /tmp/gpu-data/NAME.
set -euo pipefail
name=$1
shift
mkdir -p /tmp/gpu-runs /tmp/gpu-data
cd "$(dirname "$0")/../.."
for dir in .gpu/*/; do
  [ -d "$dir" ] && [ ! -e "/tmp/gpu-data/$(basename "$dir")" ] && cp -r "$dir" /tmp/gpu-data/
done
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=3
setsid bash -c 'python3 bench/run_$1.py "${@:3}" --json /tmp/gpu-runs/$2.json \
  > /tmp/gpu-runs/$2.log 2>&1; echo $? > /tmp/gpu-runs/$2.rc' _ "$1" "$name" "${@:2}" \
  < /dev/null > /dev/null 2>&1 &
echo "started $name (pid $!)"
