#!/usr/bin/env bash
# Distributed training with torchrun, as mmseg's and mmdet's tools/dist_train.sh:
#   bash tools/dist_train.sh CONFIG NPROC [train.py options...]
# NNODES, NODE_RANK, MASTER_ADDR, PORT and PYTHON: see tools/dist_run.sh.
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
