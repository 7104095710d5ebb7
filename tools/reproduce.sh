#!/usr/bin/env bash
# Reproduce a paper's table for one method: train and test it on COCO
# splits 1-4 (and/or VOC), then print seen/unseen AP50 per split, the 4-split
# average and VOC next to the published numbers (docs/model_zoo.md).
#
#   bash tools/reproduce.sh METHOD [GPUS]
#
# METHOD: siamese-faster-rcnn, coae, cat, bhrl, matching-fcos or
# matching-fcos-sarm (the configs configs/<method>/<METHOD>_r50-*_<data>.py).
# GPUS: processes per run (default 8). The configs are written for 8 x 2
# episodes per iteration; with another count the learning rate is rescaled
# (--auto-scale-lr).
#
# Environment:
#   DATA       coco (splits 1-4, default), voc, or all (both)
#   WORK_ROOT  default work_dirs/reproduce/METHOD; one work dir per config
#   RUNS       query draws per test (default: the config's test_cfg.runs, 5)
#   LAUNCHER   pytorch (tools/dist_train.sh / dist_test.sh, default) or
#              slurm (tools/slurm_train.sh / slurm_test.sh; needs PARTITION)
#   PYTHON     the interpreter (default python)
#   TRAIN_ARGS, TEST_ARGS  extra arguments of tools/train.py / tools/test.py
#   DRY_RUN=1  print the commands instead of running them
#   CONFIGS    space-separated config files to run instead of METHOD's
#              (e.g. a config of your own data; METHOD then only names
#              WORK_ROOT; no --auto-scale-lr unless given in TRAIN_ARGS)
#
# A rerun carries on where the last one stopped: a config whose training
# finished is not trained again, an interrupted one resumes (--resume: the
# newest readable checkpoint), a config with a test result is not tested
# again. The test covers the seen and the unseen classes in one pass
# (episode_classes=all: a class's AP50 depends only on its own episodes).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' \
        "$0" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
METHOD=$1
GPUS=${2:-8}
DATA=${DATA:-coco}
WORK_ROOT=${WORK_ROOT:-work_dirs/reproduce/$METHOD}
LAUNCHER=${LAUNCHER:-pytorch}
DRY_RUN=${DRY_RUN:-0}
PY=${PYTHON:-python}
export PYTHON=$PY
read -r -a TRAIN_EXTRA <<< "${TRAIN_ARGS:-}"
read -r -a TEST_EXTRA <<< "${TEST_ARGS:-}"

case "$METHOD" in
    matching-fcos-sarm) DIR=matching-fcos ;;
    siamese-faster-rcnn|coae|cat|bhrl|matching-fcos) DIR=$METHOD ;;
    *) if [ -z "${CONFIGS:-}" ]; then
           echo "reproduce.sh: unknown METHOD '$METHOD'" >&2; usage
       fi ;;
esac
case "$DATA" in
    coco) SPLITS=(coco-split1 coco-split2 coco-split3 coco-split4) ;;
    voc) SPLITS=(voc) ;;
    all) SPLITS=(coco-split1 coco-split2 coco-split3 coco-split4 voc) ;;
    *) echo "reproduce.sh: DATA must be coco, voc or all, got '$DATA'" >&2
       exit 2 ;;
esac
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "reproduce.sh: GPUS must be a positive number, got '$GPUS'" >&2
    exit 2
fi
if [ "$LAUNCHER" = slurm ] && [ -z "${PARTITION:-}" ]; then
    echo "reproduce.sh: LAUNCHER=slurm needs PARTITION" >&2
    exit 2
fi
SCALE=()  # the method configs are written for 8 processes
[ "$GPUS" -eq 8 ] || [ -n "${CONFIGS:-}" ] || SCALE=(--auto-scale-lr)
RUNS_ARG=()
[ -z "${RUNS:-}" ] || RUNS_ARG=(--runs "$RUNS")

# Print a command (DRY_RUN=1) or run it.
step() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

train() {  # CONFIG WORK_DIR [train.py args...]
    local cfg=$1 work=$2
    shift 2
    if [ "$LAUNCHER" = slurm ]; then
        step env GPUS="$GPUS" bash tools/slurm_train.sh "$PARTITION" \
            "train_$(basename "$cfg" .py)" "$cfg" "$work" "$@"
    else
        step bash tools/dist_train.sh "$cfg" "$GPUS" --work-dir "$work" "$@"
    fi
}

test_() {  # CONFIG CHECKPOINT WORK_DIR [test.py args...]
    local cfg=$1 ckpt=$2 work=$3
    shift 3
    if [ "$LAUNCHER" = slurm ]; then
        step env GPUS="$GPUS" bash tools/slurm_test.sh "$PARTITION" \
            "test_$(basename "$cfg" .py)" "$cfg" "$ckpt" --work-dir "$work" \
            "$@"
    else
        step bash tools/dist_test.sh "$cfg" "$ckpt" "$GPUS" \
            --work-dir "$work" "$@"
    fi
}

CONFIG_LIST=()
if [ -n "${CONFIGS:-}" ]; then
    read -r -a CONFIG_LIST <<< "$CONFIGS"
else
    for split in "${SPLITS[@]}"; do
        shopt -s nullglob
        cfgs=(configs/"$DIR"/"$METHOD"_r50-*_"$split".py)
        shopt -u nullglob
        if [ ${#cfgs[@]} -ne 1 ]; then
            echo "reproduce.sh: expected one config" \
                "configs/$DIR/${METHOD}_r50-*_$split.py, found ${#cfgs[@]}" >&2
            exit 1
        fi
        CONFIG_LIST+=("${cfgs[0]}")
    done
fi

for cfg in "${CONFIG_LIST[@]}"; do
    [ -f "$cfg" ] || { echo "reproduce.sh: no config $cfg" >&2; exit 1; }
    name=$(basename "$cfg" .py)
    work="$WORK_ROOT/$name"
    echo "[reproduce] $name: train + test in $work"

    if [ -f "$work/train_done" ]; then
        echo "[reproduce]   training finished before ($work/train_done)"
    else
        resume=()
        [ -f "$work/last_checkpoint" ] && resume=(--resume)
        train "$cfg" "$work" ${resume[@]+"${resume[@]}"} \
            ${SCALE[@]+"${SCALE[@]}"} ${TRAIN_EXTRA[@]+"${TRAIN_EXTRA[@]}"}
        [ "$DRY_RUN" = 1 ] || date > "$work/train_done"
    fi

    if compgen -G "$work/test/*/oneshot_runs.json" > /dev/null; then
        echo "[reproduce]   tested before ($work/test)"
        continue
    fi
    if [ "$DRY_RUN" = 1 ]; then
        ckpt="<$work/last_checkpoint>"
    else
        ckpt=$(cat "$work/last_checkpoint")
    fi
    test_ "$cfg" "$ckpt" "$work/test" ${RUNS_ARG[@]+"${RUNS_ARG[@]}"} \
        --cfg-options test_dataloader.dataset.episode_classes=all \
        ${TEST_EXTRA[@]+"${TEST_EXTRA[@]}"}
done

step "$PY" tools/analysis/collect_results.py "$WORK_ROOT" \
    --out "$WORK_ROOT/table.md" --csv "$WORK_ROOT/table.csv"
echo "[reproduce] table: $WORK_ROOT/table.md (CSV: $WORK_ROOT/table.csv)"
