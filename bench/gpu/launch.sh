#!/usr/bin/env bash
# Start one benchmark on the GPU machine in its own session, so that it outlives the
# `device` call that started it: bench/gpu/launch.sh NAME accuracy|loop ARGS...
# Log in /tmp/gpu-runs/NAME.log, exit status in NAME.rc, results in NAME.json.
set -euo pipefail
name=$1
shift
mkdir -p /tmp/gpu-runs
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=3
setsid bash -c 'python3 bench/run_$1.py "${@:3}" --json /tmp/gpu-runs/$2.json \
  > /tmp/gpu-runs/$2.log 2>&1; echo $? > /tmp/gpu-runs/$2.rc' _ "$1" "$name" "${@:2}" \
  < /dev/null > /dev/null 2>&1 &
echo "started $name (pid $!)"
