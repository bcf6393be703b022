# The README's two commands. Both first run the idempotent set-up (tools/setup_env.sh): the first
# time on a machine it builds mmcv (7 to 18 minutes on 2 cores), later it takes seconds.
PYTHON := .venv/bin/python

.PHONY: setup train test
setup:
	bash tools/setup_env.sh

train: setup
	$(PYTHON) tools/train.py configs/ocr_r50.py

test: setup
	$(PYTHON) -m pytest
