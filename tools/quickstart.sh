#!/usr/bin/env bash
# Quickstart on the project's own synthetic one-shot data (no download):
# generate the data, train a tiny detector on CPU, evaluate seen and unseen
# AP50 over 5 query draws, and draw a few episodes into a PNG.
#
#   bash tools/quickstart.sh            (after bash tools/install.sh)
#
# Environment: CONFIG (default below), WORK_DIR, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py}
WORK_DIR=${WORK_DIR:-work_dirs/quickstart}

echo "[quickstart] 1/4 generating synthetic data in data/synthetic"
"$PY" tools/data/generate_synthetic.py data/synthetic

echo "[quickstart] 2/4 training $CONFIG"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
CKPT=$(cat "$WORK_DIR/last_checkpoint")

# The quickstart's test set holds episodes of every class: AP50 of a class
# depends only on that class's episodes, so one pass gives both the seen and
# the unseen mean.
echo "[quickstart] 3/4 testing $CKPT (5 query draws, seen and unseen classes)"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test"

echo "[quickstart] 4/4 drawing episodes"
"$PY" tools/visualize_episodes.py "$CONFIG" "$CKPT" \
    --out "$WORK_DIR/quickstart_episodes.png"
echo "[quickstart] done: results in $WORK_DIR (per-run JSON under" \
     "$WORK_DIR/test, picture $WORK_DIR/quickstart_episodes.png)"
