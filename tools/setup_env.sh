#!/usr/bin/env bash
# One idempotent set-up path for a fresh machine: creates ./.venv with the pinned OpenMMLab stack,
# mmext in editable mode and the test dependencies, then verifies the compiled mmcv ops import.
#
#   bash tools/setup_env.sh          # both README commands (make train / make test) call this
#
# Why the pins: mmseg 1.2.2 and mmdet 3.3.0 assert mmcv < 2.2, and mmcv 2.1.0 ships no wheel for
# torch 2.13, so mmcv is built from source once and the wheel is cached in $MMEXT_CACHE (outside the
# checkout); a second set-up on the same machine reuses it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMEXT_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0
CACHE=${MMEXT_CACHE:-$HOME/.cache/mmext}
WHEELS=$CACHE/wheels/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION-cpu
STAMP=$VENV/.mmext-setup-stamp

fail() { echo "setup_env: FAILED: $*" >&2; exit 1; }
step() { echo "setup_env: $*"; }

command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || fail "Python 3.11 is required ($PYTHON is $("$PYTHON" --version 2>&1))"

# The stamp holds a hash of everything that decides the environment; if it matches and the
# verification passes, there is nothing to do.
want=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT/requirements"/*.txt | sha256sum | cut -d' ' -f1)
verify() {
  "$VENV/bin/python" - <<'PY'
import importlib, sys
for name in ('torch', 'mmcv.ops', 'mmengine', 'mmseg.models', 'mmdet.models', 'cv2', 'mmext', 'pytest',
             'hypothesis', 'onnx', 'onnxscript', 'onnxruntime', 'openvino'):
    try:
        importlib.import_module(name)
    except Exception as exc:  # report the first broken import with its reason
        sys.exit(f'cannot import {name}: {type(exc).__name__}: {exc}')
import mmcv, mmseg, mmdet, mmengine, torch
print(f'setup_env: OK torch {torch.__version__}, mmcv {mmcv.__version__} (ops compiled), '
      f'mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}')
PY
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && verify 2>/dev/null; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || { step "creating $VENV"; "$PYTHON" -m venv "$VENV" || fail "python -m venv"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

step "build tools and torch $TORCH_VERSION (CPU)"
# setuptools < 80: mmcv's setup.py imports pkg_resources, and mmengine 0.10.7 uses it at run time.
"${PIP[@]}" install -r "$ROOT/requirements/build.txt" || fail "installing build tools"
"${PIP[@]}" install "torch==$TORCH_VERSION" || fail "installing torch==$TORCH_VERSION"

if ! ls "$WHEELS"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
  step "building mmcv $MMCV_VERSION with its compiled ops (once per machine, 7 to 18 min on 2 cores)"
  mkdir -p "$WHEELS"
  # No build isolation: the build must see torch, or it silently produces a wheel without mmcv._ext.
  MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) "${PIP[@]}" wheel --no-build-isolation --no-deps \
    "mmcv==$MMCV_VERSION" -w "$WHEELS" || fail "building mmcv $MMCV_VERSION from source"
fi
"${PIP[@]}" install --no-deps "$WHEELS"/mmcv-$MMCV_VERSION-*.whl || fail "installing cached mmcv wheel"

step "OpenMMLab stack, test and deployment dependencies"
# mmext[all]: the core, both hosts (seg, det) and deployment, pinned in requirements/; then the tests'.
"${PIP[@]}" install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/seg.txt" \
  -r "$ROOT/requirements/det.txt" -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/tests.txt" \
  || fail "installing the requirements of mmext[all] and of the tests"
# mmengine pulls opencv-python, which needs libGL; both provide cv2, so remove it and restore the
# headless files it shared.
if "$VENV/bin/python" -m pip show -q opencv-python >/dev/null 2>&1; then
  "${PIP[@]}" uninstall -y opencv-python || fail "removing opencv-python"
  "${PIP[@]}" install --force-reinstall --no-deps "$(grep -i '^opencv-python-headless' "$ROOT/requirements/runtime.txt")" \
    || fail "reinstalling opencv-python-headless"
fi
"${PIP[@]}" install --no-build-isolation --no-deps -e "$ROOT[all]" || fail "installing mmext[all] (editable)"

step "verifying"
verify || fail "verification (see the import error above)"
echo "$want" > "$STAMP"
