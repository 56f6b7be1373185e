#!/usr/bin/env bash
# Runs vision_jax.main as N local JAX processes on the CPU (gloo collectives), e.g. to try multi-host code
# on one machine:
#   launch/local_cpu.sh 2 --config=configs/mnist_lenet.py:smoke --workdir=runs/two_procs
# Environment: DEVICES_PER_PROCESS (fake CPU devices per process, default 1), PORT (coordinator port),
# PYTHON (interpreter, default python).
# Process 0 prints; the script exits non-zero if any process fails.
set -euo pipefail
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 NUM_PROCESSES [vision_jax.main flags...]" >&2
  exit 2
fi
num_processes=$1
shift
devices=${DEVICES_PER_PROCESS:-1}
port=${PORT:-$("${PYTHON:-python}" -c 'import socket; s=socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}
pids=()
for ((i = 0; i < num_processes; i++)); do
  JAX_PLATFORMS=cpu XLA_FLAGS="--xla_force_host_platform_device_count=${devices} ${XLA_FLAGS:-}" \
    "${PYTHON:-python}" -m vision_jax.main --coordinator_address="localhost:${port}" --num_processes="${num_processes}" \
    --process_id="${i}" "$@" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "${pid}" || status=$?
done
exit "${status}"
