#!/usr/bin/env bash
# torchrun of one of the tools, shared by dist_train.sh and dist_test.sh:
#   bash tools/dist_run.sh TOOL NPROC [TOOL arguments...]     (TOOL: train.py or test.py)
# NPROC processes per node: one per GPU, or CPU processes on gloo when CUDA is unavailable.
# Several nodes: run it on every node with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR (node 0's
# address) and PORT set alike. PYTHON defaults to the repository's .venv, else python.
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS=$(dirname "$0")
if [ -z "$PYTHON" ]; then
    if [ -x "$TOOLS/../.venv/bin/python" ]; then PYTHON="$TOOLS/../.venv/bin/python"; else PYTHON=python; fi
fi

PYTHONPATH="$TOOLS/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS/$TOOL" \
    "${@:3}" \
    --launcher pytorch
