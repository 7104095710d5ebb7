#!/usr/bin/env bash
# GPU smoke check: everything that must run on CUDA with no code change.
#
#   bash tools/gpu_check.sh            (after bash tools/install.sh)
#
# 1. mmcv's compiled CUDA ops (nms, RoIAlign) must run on a CUDA tensor;
#    if they do not, mmcv 2.1.0 is rebuilt from source with its CUDA ops as
#    the README's Install section says (FORCE_CUDA=1, nvcc on PATH or
#    CUDA_HOME set), through tools/install.sh.
# 2. Each quickstart config (configs/quickstart/*_synthetic.py) trains
#    $ITERS iterations on CUDA in fp32, the Siamese one once more with
#    --amp; each checkpoint is tested (one query draw).
# 3. The demo and the cached inferencer (tools/benchmark_inferencer.py) run
#    on CUDA with the Siamese checkpoint.
# 4. tools/benchmark.py at 1000x600 on CUDA: every R50 method next to its
#    base detector, K = 1, 4, 16 queries, stages, memory and which
#    RoIAlign / nms ran (the check fails if any ran on the CPU); training
#    throughput of the quickstart configs next to their base detectors.
# The figures are printed at the end and kept in $WORK_DIR/summary.txt.
# About 8 minutes on one modern GPU with the defaults.
#
# Environment: PYTHON (default python3), ITERS (training iterations per
# config, default 300), WORK_DIR (default work_dirs/gpu_check), DATA_ROOT
# (synthetic data; default data/synthetic if it holds annotations, else
# generated into $WORK_DIR/data), REPEAT (benchmark repeats, default 5).
# Exit status: 0 all passed, 2 no CUDA device (nothing was run), 1 a step
# failed (its log is named).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
ITERS=${ITERS:-300}
WORK_DIR=${WORK_DIR:-work_dirs/gpu_check}
REPEAT=${REPEAT:-5}
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}

# 0. A CUDA device, or a clear stop.
if ! cuda_info=$("$PY" - <<'PYEOF' 2>&1
import sys
import torch
if not torch.cuda.is_available():
    print(f'torch {torch.__version__} (built for CUDA {torch.version.cuda}) '
          'sees no CUDA device (torch.cuda.is_available() is False)')
    sys.exit(1)
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
      f'{torch.cuda.get_device_name(0)}')
PYEOF
); then
    echo "[gpu_check] no CUDA: ${cuda_info}." >&2
    echo "[gpu_check] Nothing was run. This check needs an NVIDIA GPU and a" \
         "CUDA build of torch (README, Install: GPU); everything else in the" \
         "project runs on the CPU." >&2
    exit 2
fi
mkdir -p "$WORK_DIR"
SUMMARY="$WORK_DIR/summary.txt"
: > "$SUMMARY"
note() { echo "[gpu_check] $*"; echo "$*" >> "$SUMMARY"; }
fail() { echo "[gpu_check] FAILED: $1; the end of $2:" >&2; tail -n 30 "$2" >&2; exit 1; }
start=$(date +%s)
note "device: $cuda_info"

# 1. mmcv with CUDA ops.
mmcv_cuda_ok() {
    "$PY" - <<'PYEOF'
import torch
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]], device='cuda')
_, keep = nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
feats = torch.rand(1, 4, 32, 32, device='cuda')
out = RoIAlign(7, 1.0, 0)(feats, torch.tensor([[0., 0., 0., 20., 20.]],
                                              device='cuda'))
assert keep.is_cuda and out.is_cuda and out.shape == (1, 4, 7, 7)
print(f'mmcv CUDA ops ok (compiled for CUDA {get_compiling_cuda_version()})')
PYEOF
}
if ! mmcv_msg=$(mmcv_cuda_ok 2>&1); then
    echo "[gpu_check] mmcv's CUDA ops do not run: $(echo "$mmcv_msg" | tail -n 1)"
    if ! command -v nvcc >/dev/null && [ -z "${CUDA_HOME:-}" ]; then
        echo "[gpu_check] FAILED: rebuilding mmcv with CUDA ops needs nvcc" \
             "(the CUDA major version of torch) on PATH or CUDA_HOME set" \
             "(README, Install: GPU)." >&2
        exit 1
    fi
    echo "[gpu_check] rebuilding mmcv 2.1.0 from source with its CUDA ops" \
         "(README, Install: GPU; log: $WORK_DIR/install.log)"
    "$PY" -m pip uninstall -y mmcv > "$WORK_DIR/install.log" 2>&1 || true
    # No cached or prebuilt CPU-only wheel: build from source, with CUDA.
    FORCE_CUDA=1 PIP_NO_CACHE_DIR=1 PIP_NO_BINARY=mmcv PYTHON="$PY" \
        bash tools/install.sh >> "$WORK_DIR/install.log" 2>&1 \
        || fail "tools/install.sh" "$WORK_DIR/install.log"
    mmcv_msg=$(mmcv_cuda_ok 2>&1) \
        || { echo "$mmcv_msg" > "$WORK_DIR/mmcv_check.log";
             fail "mmcv was rebuilt but its CUDA ops still do not run" \
                  "$WORK_DIR/mmcv_check.log"; }
fi
note "$mmcv_msg"

# 2. Data.
DATA_ROOT=${DATA_ROOT:-data/synthetic}
if [ ! -f "$DATA_ROOT/annotations/train.json" ]; then
    DATA_ROOT="$WORK_DIR/data"
    echo "[gpu_check] generating synthetic data in $DATA_ROOT"
    "$PY" tools/data/generate_synthetic.py "$DATA_ROOT" --num-train 1000 \
        --num-val 100 > "$WORK_DIR/data.log" 2>&1 \
        || fail "generating data" "$WORK_DIR/data.log"
fi
DATA_OPTS=()
for loader in train_dataloader val_dataloader test_dataloader; do
    DATA_OPTS+=("$loader.dataset.data_root=$DATA_ROOT/")
done

# 3. Train (fp32; the Siamese config also with --amp) and test on CUDA.
train_and_test() {  # config, name, extra train args...
    local cfg=$1 name=$2; shift 2
    local dir="$WORK_DIR/$name"
    local t0=$(date +%s)
    # No validation during these short runs: the test below is the check.
    "$PY" tools/train.py "$cfg" --work-dir "$dir" "$@" --cfg-options \
        "train_dataloader.dataset.data_root=$DATA_ROOT/" \
        train_cfg.max_iters="$ITERS" \
        default_hooks.checkpoint.interval="$ITERS" \
        default_hooks.logger.interval=50 \
        val_cfg=None val_dataloader=None val_evaluator=None \
        > "$dir.train.log" 2>&1 < /dev/null || fail "training $name" "$dir.train.log"
    local t1=$(date +%s)
    grep -q "CUDA available: True" "$dir.train.log" \
        || fail "training $name did not report a CUDA device" "$dir.train.log"
    local iter_s
    iter_s=$(grep -oE ' time: [0-9.]+' "$dir.train.log" | tail -n 1 \
             | awk '{print $2}')
    local loss
    loss=$(grep -oE ' loss: [0-9.naif]+' "$dir.train.log" | tail -n 1 \
           | awk '{print $2}')
    local ckpt
    ckpt=$(cat "$dir/last_checkpoint")
    "$PY" tools/test.py "$cfg" "$ckpt" --runs 1 --work-dir "$dir/test" \
        --cfg-options "${DATA_OPTS[@]}" > "$dir.test.log" 2>&1 \
        || fail "testing $name" "$dir.test.log"
    local t2=$(date +%s)
    local ap
    ap=$(grep -oE 'One-shot summary.*' "$dir.test.log" | tail -n 1 \
         | sed -E 's/.*: //' || true)
    note "$(printf '%-48s train %4d it %4d s (%s s/iter, last loss %s)  test %3d s  %s' \
        "$name" "$ITERS" $((t1 - t0)) "${iter_s:-?}" "${loss:-?}" \
        $((t2 - t1)) "${ap:-(no one-shot summary line)}")"
}
for cfg in configs/quickstart/*_synthetic.py; do
    name=$(basename "$cfg" .py)
    train_and_test "$cfg" "$name"
done
SIAMESE=configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py
train_and_test "$SIAMESE" siamese-faster-rcnn_r18-tiny_synthetic-amp --amp
grep -q "AmpOptimWrapper" "$WORK_DIR/siamese-faster-rcnn_r18-tiny_synthetic-amp.train.log" \
    || fail "--amp did not use AmpOptimWrapper" \
            "$WORK_DIR/siamese-faster-rcnn_r18-tiny_synthetic-amp.train.log"

# 4. Demo and the cached inferencer on CUDA with the Siamese checkpoint.
CKPT=$(cat "$WORK_DIR/siamese-faster-rcnn_r18-tiny_synthetic/last_checkpoint")
read -r TARGET QUERY BOX < <("$PY" - "$DATA_ROOT" <<'PYEOF'
import json, os.path as osp, sys
root = sys.argv[1]
ann = json.load(open(osp.join(root, 'annotations/val.json')))
images = {im['id']: im['file_name'] for im in ann['images']}
a = ann['annotations'][0]
x, y, w, h = a['bbox']
print(osp.join(root, 'val', images[ann['images'][-1]['id']]),
      osp.join(root, 'val', images[a['image_id']]),
      f'{x:.0f},{y:.0f},{x + w:.0f},{y + h:.0f}')
PYEOF
)
"$PY" tools/demo.py "$TARGET" --query "$QUERY" --query-box "$BOX" \
    --config "$SIAMESE" --checkpoint "$CKPT" --device cuda \
    --out "$WORK_DIR/demo" > "$WORK_DIR/demo.log" 2>&1 \
    || fail "demo" "$WORK_DIR/demo.log"
note "demo: $(tail -n 1 "$WORK_DIR/demo.log")"
"$PY" tools/benchmark_inferencer.py "$SIAMESE" --checkpoint "$CKPT" \
    --images "$DATA_ROOT/val" --targets 100 --queries 3 --device cuda \
    > "$WORK_DIR/inferencer.log" 2>&1 \
    || fail "benchmark_inferencer" "$WORK_DIR/inferencer.log"
note "$(grep -E 'cached|per pair|speed-up' "$WORK_DIR/inferencer.log")"

# 5. The benchmark at 1000x600 on CUDA, then training throughput.
"$PY" tools/benchmark.py configs/siamese-faster-rcnn_r50.py \
    configs/coae_r50.py configs/cat_r50.py configs/bhrl_r50.py \
    configs/matching-fcos_r50.py \
    configs/matching-fcos/matching-fcos-sarm_r50-fpn_8xb2-12e_coco-split1.py \
    --base --queries 1 4 16 --stages --size 1000 600 --device cuda \
    --repeat "$REPEAT" > "$WORK_DIR/benchmark.log" 2>&1 \
    || fail "benchmark" "$WORK_DIR/benchmark.log"
if sed -n '/RoIAlign \/ nms implementations/,$p' "$WORK_DIR/benchmark.log" \
        | grep -q '(cpu)'; then
    fail "a RoIAlign / nms call ran on the CPU" "$WORK_DIR/benchmark.log"
fi
"$PY" tools/benchmark.py configs/quickstart/*_synthetic.py --base --train \
    --size 160 160 --device cuda --repeat "$REPEAT" \
    > "$WORK_DIR/benchmark_train.log" 2>&1 \
    || fail "training benchmark" "$WORK_DIR/benchmark_train.log"
{ echo; cat "$WORK_DIR/benchmark.log"; echo; cat "$WORK_DIR/benchmark_train.log"; } \
    | grep -v -i warn >> "$SUMMARY"

elapsed=$(( $(date +%s) - start ))
echo
echo "[gpu_check] passed in $((elapsed / 60)) min $((elapsed % 60)) s; figures:"
cat "$SUMMARY"
