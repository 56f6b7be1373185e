#!/usr/bin/env bash
# Runs vision_jax.main on every worker of a Cloud TPU VM pod slice; jax.distributed auto-detects the slice.
#   launch/tpu_pod.sh TPU_NAME ZONE --config=configs/mnist_lenet.py --workdir=gs://bucket/runs/lenet
# Assumes the repository is checked out at ~/vision_jax on every worker (e.g. with a previous
# `gcloud compute tpus tpu-vm ssh ... --worker=all --command="git clone ..."`) and a shared --workdir
# (a GCS bucket) so that all workers write one checkpoint.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 TPU_NAME ZONE [vision_jax.main flags...]" >&2
  exit 2
fi
tpu_name=$1
zone=$2
shift 2
flags=$(printf '%q ' "$@")
gcloud compute tpus tpu-vm ssh "${tpu_name}" --zone="${zone}" --worker=all --command="
  set -e
  cd ~/vision_jax
  pip install -q -e . 'jax[tpu]'
  python -m vision_jax.main --multihost ${flags}
"
