#!/usr/bin/env bash
# Quickstart on the project's own synthetic one-shot data (no download):
# generate the data (shape mode: colour carries no class information),
# pre-train a tiny backbone to classify crops of the seen classes (never the
# unseen ones), train the tiny detector from it on CPU, evaluate seen and
# unseen AP50 next to the query-blind level over 5 query draws, choose the
# query-verification threshold on training images (seen classes only), and
# draw a few episodes into a PNG (verified, and the detector alone).
#
#   bash tools/quickstart.sh            (after bash tools/install.sh)
#
# Environment: CONFIG (default below), WORK_DIR, PYTHON; CALIB_IMAGES (the
# training images the verification threshold is chosen on, default 300); PRETRAIN_OUT (the
# pre-trained backbone, default the file CONFIG's backbone init_cfg names;
# kept and reused if it exists; training starts from it), PRETRAIN_ITERS
# (default 1500); NPROC, the processes that train and test (default 2 on a
# machine with 2 or more cores, else 1: one thread each, data-parallel over
# gloo through tools/dist_train.sh / dist_test.sh; the config's batch of
# episodes is split between them, so every step still trains on the same
# 8 episodes); PORT (the processes' rendezvous port; default a free one). The full logs
# (config, environment, every logged iteration, per-class tables) go to
# $WORK_DIR/*.log; the screen shows progress and a closing summary.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py}
WORK_DIR=${WORK_DIR:-work_dirs/quickstart}
mkdir -p "$WORK_DIR"
start=$(date +%s)

echo "[quickstart] 1/6 generating synthetic data in data/synthetic"
"$PY" tools/data/generate_synthetic.py data/synthetic

# From the config, read once: the backbone file it starts from (its
# init_cfg checkpoint, "-" if none), its training batch (episodes per step),
# its number of query draws and its training annotation file and image
# folder (where the verification threshold is chosen).
read -r CFG_PRETRAIN BATCH RUNS TRAIN_ANN TRAIN_IMG < <("$PY" -c "
import sys, os.path as osp; from mmengine.config import Config
cfg = Config.fromfile(sys.argv[1])
init = cfg.model.backbone.get('init_cfg') or {}
ckpt = init.get('checkpoint') if init.get('type') == 'Pretrained' else None
ds = cfg.train_dataloader.dataset
root = ds.get('data_root', '') or ''
print(ckpt or '-', cfg.train_dataloader.batch_size, cfg.test_cfg.get('runs', 1),
      osp.join(root, ds.ann_file), osp.join(root, ds.data_prefix.get('img', '')))
" "$CONFIG" 2>/dev/null) || { echo "[quickstart] cannot read $CONFIG" >&2; exit 1; }
[ "$CFG_PRETRAIN" = "-" ] && CFG_PRETRAIN=""
PRETRAIN_OUT=${PRETRAIN_OUT:-$CFG_PRETRAIN}
# A PRETRAIN_OUT other than the config's file is what training starts from.
CFG_OPTS=()
if [ -n "$CFG_PRETRAIN" ] && [ "$PRETRAIN_OUT" != "$CFG_PRETRAIN" ]; then
    CFG_OPTS=("model.backbone.init_cfg.checkpoint=$PRETRAIN_OUT")
fi
if [ -n "$PRETRAIN_OUT" ] && [ ! -f "$PRETRAIN_OUT" ]; then
    echo "[quickstart] 2/6 pre-training the backbone on seen-class crops -> $PRETRAIN_OUT (log: $WORK_DIR/pretrain.log)"
    if ! "$PY" tools/pretrain_backbone.py "$CONFIG" --out "$PRETRAIN_OUT" \
            --iters "${PRETRAIN_ITERS:-1500}" > "$WORK_DIR/pretrain.log" 2>&1; then
        echo "[quickstart] pre-training failed; the end of $WORK_DIR/pretrain.log:" >&2
        tail -n 30 "$WORK_DIR/pretrain.log" >&2
        exit 1
    fi
    grep " step " "$WORK_DIR/pretrain.log" | tail -n 1 | sed "s/^/[quickstart]    /"
elif [ -n "$PRETRAIN_OUT" ]; then
    echo "[quickstart] 2/6 using the pre-trained backbone $PRETRAIN_OUT (delete it to pre-train again)"
else
    echo "[quickstart] 2/6 no pre-trained backbone in $CONFIG: training from scratch"
fi

# Data-parallel on the machine's cores: mmcv's CPU RoIAlign and the small
# convolutions of the tiny model hardly use a second thread, so two
# one-thread processes with half the batch each train about 1.5 times as
# fast as one process with two threads (0.18 against 0.27 s per iteration).
CORES=$(nproc 2>/dev/null || echo 1)
NPROC=${NPROC:-$(( CORES >= 2 ? 2 : 1 ))}
if [ "$NPROC" -gt 1 ] && [ $(( BATCH % NPROC )) -ne 0 ]; then
    echo "[quickstart] the batch of $CONFIG ($BATCH episodes) does not split into NPROC=$NPROC processes; using 1" >&2
    NPROC=1
fi
if [ "$NPROC" -gt 1 ]; then
    # A free port for the processes' rendezvous unless PORT is given.
    PORT=${PORT:-$("$PY" -c "
import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
    TRAIN_CMD=(env PYTHON="$PY" OMP_NUM_THREADS=1 PORT="$PORT" bash tools/dist_train.sh "$CONFIG" "$NPROC")
    TEST_CMD=(env PYTHON="$PY" OMP_NUM_THREADS=1 PORT="$PORT" bash tools/dist_test.sh "$CONFIG")
    CFG_OPTS+=("train_dataloader.batch_size=$(( BATCH / NPROC ))"
               "train_dataloader.num_workers=1")
    TEST_ARGS=("$NPROC")
    PROCS="$NPROC processes x 1 thread, $(( BATCH / NPROC )) of the $BATCH episodes each"
else
    TRAIN_CMD=("$PY" tools/train.py "$CONFIG")
    TEST_CMD=("$PY" tools/test.py "$CONFIG")
    TEST_ARGS=()
    PROCS="1 process"
fi
TRAIN_OPTS=()
[ ${#CFG_OPTS[@]} -gt 0 ] && TRAIN_OPTS=(--cfg-options "${CFG_OPTS[@]}")

# Every 500th iteration on the screen; everything in the log.
echo "[quickstart] 3/6 training $CONFIG ($PROCS; log: $WORK_DIR/train.log)"
"${TRAIN_CMD[@]}" --work-dir "$WORK_DIR" ${TRAIN_OPTS[@]+"${TRAIN_OPTS[@]}"} \
    > "$WORK_DIR/train.log" 2>&1 < /dev/null &
train_pid=$!
tail -n +1 -f "$WORK_DIR/train.log" --pid "$train_pid" 2>/dev/null \
    | grep --line-buffered -E 'Iter\(train\) \[ *[0-9]*[05]00/' \
    | sed -u -E 's/.*Iter\(train\) \[ *([0-9]+\/[0-9]+)\].*eta: ([0-9:]+).* loss: ([0-9.]+).*/[quickstart]    iteration \1  loss \3  eta \2/' || true
if ! wait "$train_pid"; then
    echo "[quickstart] training failed; the end of $WORK_DIR/train.log:" >&2
    tail -n 30 "$WORK_DIR/train.log" >&2
    exit 1
fi
CKPT=$(cat "$WORK_DIR/last_checkpoint")

# The quickstart's test set holds episodes of every class: AP50 of a class
# depends only on that class's episodes, so one pass gives both the seen and
# the unseen mean.
echo "[quickstart] 4/6 testing $CKPT ($RUNS query draws; log: $WORK_DIR/test.log)"
if ! "${TEST_CMD[@]}" "$CKPT" ${TEST_ARGS[@]+"${TEST_ARGS[@]}"} --work-dir "$WORK_DIR/test" \
        > "$WORK_DIR/test.log" 2>&1 < /dev/null; then
    echo "[quickstart] testing failed; the end of $WORK_DIR/test.log:" >&2
    tail -n 30 "$WORK_DIR/test.log" >&2
    exit 1
fi

# Query verification (oneshot/apis/verification.py; an inference option,
# never part of the protocol AP above): each detection's box is encoded like
# a query and kept only if similar enough to the query. The threshold is
# chosen on training images and seen classes only, one query per class.
VERIFY="$WORK_DIR/verification.json"
echo "[quickstart] 5/6 choosing the query-verification threshold on ${CALIB_IMAGES:-300} training images (seen classes; log: $WORK_DIR/calibrate.log)"
if ! "$PY" tools/analysis/calibrate_verification.py "$CONFIG" "$CKPT" \
        --ann-file "$TRAIN_ANN" --img-dir "$TRAIN_IMG" \
        --max-images "${CALIB_IMAGES:-300}" --out "$VERIFY" \
        > "$WORK_DIR/calibrate.log" 2>&1 < /dev/null; then
    echo "[quickstart] choosing the threshold failed; the end of $WORK_DIR/calibrate.log:" >&2
    tail -n 30 "$WORK_DIR/calibrate.log" >&2
    exit 1
fi

echo "[quickstart] 6/6 drawing episodes"
: > "$WORK_DIR/draw.log"
for kind in verified unverified; do
    out="$WORK_DIR/quickstart_episodes.png"
    VERIFY_OPTS=(--verify-thr "$VERIFY")
    if [ "$kind" = unverified ]; then
        out="$WORK_DIR/quickstart_episodes_unverified.png"
        VERIFY_OPTS=()
    fi
    "$PY" tools/visualize_episodes.py "$CONFIG" "$CKPT" --out "$out" \
        "${VERIFY_OPTS[@]+"${VERIFY_OPTS[@]}"}" >> "$WORK_DIR/draw.log" 2>&1 \
        || { tail -n 30 "$WORK_DIR/draw.log" >&2; exit 1; }
done

elapsed=$(( $(date +%s) - start ))
echo
echo "[quickstart] done in $((elapsed / 60)) min $((elapsed % 60)) s."
"$PY" tools/analysis/summarize_runs.py "$WORK_DIR/test" --title "Quickstart result"
echo
echo "Query verification, threshold in $VERIFY (precision and recall at score >= 0.5, one query per seen class over training images):"
grep -E "^  (no check|verify_thr)" "$WORK_DIR/calibrate.log" || true
echo "Picture: $WORK_DIR/quickstart_episodes.png with verification, $WORK_DIR/quickstart_episodes_unverified.png the detector alone (each query left of its target, detections green, ground truth orange)."
echo "Your own query: $PY tools/demo.py IMAGES --query QUERY.png --config $CONFIG --checkpoint $CKPT --verify-thr $VERIFY"
echo "Logs: $WORK_DIR/train.log, $WORK_DIR/test.log; per-run JSON under $WORK_DIR/test."
echo "Where the errors are: $PY tools/analysis/analyze_errors.py $CONFIG $CKPT"
