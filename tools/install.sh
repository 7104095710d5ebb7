#!/usr/bin/env bash
# Install oneshot and everything it needs into the current Python environment
# (use a venv/conda env of your choice first). Safe to run again: steps whose
# result is already there are skipped.
#
#   bash tools/install.sh
#
# Environment:
#   PYTHON         the interpreter to install into (default: python3)
#   TORCH_VERSION  torch to install when none is present (default: 2.13.0).
#                  For a GPU, install your CUDA build of torch first; it is
#                  kept, and mmcv is then compiled with its CUDA ops.
#   PIP_FIND_LINKS pip's own variable: a folder holding a prebuilt
#                  mmcv-2.1.0 wheel for *your* torch skips the ~13 min build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=("$PY" -m pip)

echo "[install] Python: $("$PY" --version 2>&1) at $(command -v "$PY")"

# 1. torch: keep whatever build is there (CPU or CUDA).
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "[install] installing torch==${TORCH_VERSION:-2.13.0}"
    "${PIP[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
fi

# 2. mmcv 2.1.0 with compiled ops. mmdet 3.3.0 requires mmcv<2.2.0 and no
#    mmcv 2.1.0 wheel exists for torch > 2.1, so it is compiled against the
#    installed torch (no build isolation, so the build sees that torch;
#    setuptools < 81 because mmcv's setup.py still imports pkg_resources).
mmcv_ok() {
    "$PY" - <<'PYEOF' 2>/dev/null
import mmcv
from mmcv.ops import nms, RoIAlign  # noqa: F401  (needs the compiled ops)
assert mmcv.__version__ == '2.1.0', mmcv.__version__
PYEOF
}
if ! mmcv_ok; then
    echo "[install] installing mmcv==2.1.0 with ops (a source build takes" \
         "~13 min on 2 cores unless PIP_FIND_LINKS holds a wheel)"
    "${PIP[@]}" install "setuptools>=77,<81" wheel ninja
    MMCV_WITH_OPS=1 "${PIP[@]}" install --no-build-isolation mmcv==2.1.0
    if ! mmcv_ok; then
        echo "[install] ERROR: mmcv 2.1.0 is installed but its compiled ops" \
             "do not load with this torch ($("$PY" -c 'import torch;print(torch.__version__)'))." >&2
        echo "[install] A wheel built for another torch was probably picked" \
             "up; rebuild with: MMCV_WITH_OPS=1 $PY -m pip install" \
             "--no-build-isolation --no-cache-dir --force-reinstall" \
             "--no-binary mmcv mmcv==2.1.0" >&2
        exit 1
    fi
fi

# 3. mmengine, mmdet, pycocotools, the test runner and oneshot itself.
"${PIP[@]}" install "setuptools>=77,<81" wheel
"${PIP[@]}" install --no-build-isolation -e ".[tests]"

"$PY" - <<'PYEOF'
import mmcv, mmdet, mmengine, torch
import oneshot
print(f'[install] ok: torch {torch.__version__} (cuda: '
      f'{torch.cuda.is_available()}), mmcv {mmcv.__version__}, mmengine '
      f'{mmengine.__version__}, mmdet {mmdet.__version__}, oneshot '
      f'{oneshot.__version__}')
PYEOF
