#!/usr/bin/env bash
# Reproduces Table 2 and Figure 2 of ASASRec (SIGIR'20), plus a robustness
# table, into results/ (results/quick/ with --quick).
#
#   ./run_all.sh                                   # every dataset, every model
#   ./run_all.sh --datasets=video --models=sasrec,asasrec
#   ./run_all.sh --quick --datasets=video          # smoke run, minutes
#
# For each dataset and each protocol -- "paper" (split loo, full ranking,
# epoch selected on the test set, as the authors' code did) and "clean"
# (split loo_valid, selected on validation) -- it trains
#   <dataset>-<protocol>-mostpop
#   <dataset>-<protocol>-bpr-pre     BPR for PRE_EPOCHS epochs
#   <dataset>-<protocol>-bpr         ... continued without the adversary
#   <dataset>-<protocol>-apr         ... continued with it (APR)
#   <dataset>-<protocol>-sasrec-pre  SASRec for PRE_EPOCHS epochs
#   <dataset>-<protocol>-sasrec      ... continued without the adversary
#   <dataset>-<protocol>-asasrec     ... continued with it (ASASRec)
# so the two members of a pair start from the same weights and get the same
# number of epochs (the paper's Figure 2 set-up). Each run uses
# flags/<dataset>/<model>.cfg. A run whose results.json exists is skipped
# (--force reruns it); an interrupted run resumes from its checkpoint.
# Then it measures robustness of the SASRec and ASASRec runs and writes
# table2.md/.csv, figure2_<dataset>.png and robustness.md.
set -euo pipefail

cd "$(dirname "$0")"

DATASETS="video,ml-1m,beauty-bert4rec,beauty,brightkite,foursquare,yelp"
MODELS="mostpop,bpr,apr,sasrec,asasrec"
PROTOCOLS="paper,clean"
DATA_DIR=""
QUICK=0
FORCE=0
PRE_EPOCHS=100
EPOCHS=100
PATIENCE=5
OUT=""
PYTHON="${PYTHON:-}"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  cat <<EOF
Options:
  --datasets=LIST     comma-separated (default: $DATASETS)
  --models=LIST       comma-separated subset of $MODELS
  --protocols=LIST    comma-separated subset of $PROTOCOLS
  --data_dir=DIR      raw data (default: ../shared/data if present, else
                      ~/.cache/asasrec_tf/raw)
  --pre_epochs=N      epochs before the continuation (default $PRE_EPOCHS)
  --epochs=N          epochs of the continuation (default $EPOCHS)
  --patience=N        early stopping of the continuation, in evaluations
                      (default $PATIENCE; 0 = run every epoch)
  --quick             2 + 2 epochs into results/quick/, for a smoke run
  --out=DIR           where runs (DIR/runs), tables and figures go
                      (default results/, or results/quick/ with --quick)
  --force             rerun runs that have finished
  -h, --help          this text
EOF
}

for arg in "$@"; do
  case "$arg" in
    --datasets=*) DATASETS="${arg#*=}" ;;
    --models=*) MODELS="${arg#*=}" ;;
    --protocols=*) PROTOCOLS="${arg#*=}" ;;
    --data_dir=*) DATA_DIR="${arg#*=}" ;;
    --pre_epochs=*) PRE_EPOCHS="${arg#*=}" ;;
    --epochs=*) EPOCHS="${arg#*=}" ;;
    --patience=*) PATIENCE="${arg#*=}" ;;
    --out=*) OUT="${arg#*=}" ;;
    --quick) QUICK=1 ;;
    --force) FORCE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

for n in "$PRE_EPOCHS" "$EPOCHS" "$PATIENCE"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "run_all.sh: '$n' is not a number" >&2; exit 2; }
done
for m in ${MODELS//,/ }; do
  [[ ",mostpop,bpr,apr,sasrec,asasrec," == *",$m,"* ]] ||
    { echo "run_all.sh: unknown model '$m' (expected some of mostpop,bpr,apr,sasrec,asasrec)" >&2; exit 2; }
done
for p in ${PROTOCOLS//,/ }; do
  [[ "$p" == paper || "$p" == clean ]] ||
    { echo "run_all.sh: unknown protocol '$p' (expected paper or clean)" >&2; exit 2; }
done
for d in ${DATASETS//,/ }; do
  [[ -d "flags/$d" ]] ||
    { echo "run_all.sh: unknown dataset '$d' (no flags/$d/)" >&2; exit 2; }
done

if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ -z "$DATA_DIR" ]]; then
  if [[ -d ../shared/data ]]; then DATA_DIR=../shared/data
  else DATA_DIR="$HOME/.cache/asasrec_tf/raw"; fi
fi

PRE_EVAL=10
EVAL=10
if (( QUICK )); then
  OUT="${OUT:-results/quick}"
  PRE_EPOCHS=2; EPOCHS=2; PATIENCE=0; PRE_EVAL=2; EVAL=1
fi
OUT="${OUT:-results}"
RUNS="$OUT/runs"
mkdir -p "$RUNS"

has_model() { [[ ",$MODELS," == *",$1,"* ]]; }

protocol_flags() {
  case "$1" in
    paper) echo "--split=loo --select_on=test --select_metric=ndcg@100" ;;
    clean) echo "--split=loo_valid --select_on=valid --select_metric=ndcg@10" ;;
  esac
}

DONE=0; SKIPPED=0; FAILED=(); MISSING=(); STARTED=$SECONDS

# run_one NAME DATASET MODEL PROTOCOL [extra flags...]
run_one() {
  local name="$1" ds="$2" model="$3" proto="$4"; shift 4
  local dir="$RUNS/$name"
  if [[ -f "$dir/results.json" ]] && (( ! FORCE )); then
    echo "  = $name: done before, skipped (--force reruns it)"
    SKIPPED=$((SKIPPED + 1)); return 0
  fi
  if (( FORCE )); then rm -rf "$dir" "$dir.log"; fi
  local began=$SECONDS
  echo "  > $name ... (log: $dir.log)"
  # shellcheck disable=SC2046
  if "$PYTHON" -m asasrec_tf.main --flagfile="flags/$ds/$model.cfg" \
      --data_dir="$DATA_DIR" --download=false --results_dir="$RUNS" \
      --run_name="$name" $(protocol_flags "$proto") "$@" >"$dir.log" 2>&1; then
    echo "    $name: $(tail -n 1 "$dir.log") [$((SECONDS - began)) s]"
    DONE=$((DONE + 1))
  else
    echo "    $name FAILED [$((SECONDS - began)) s]; last lines of $dir.log:" >&2
    tail -n 5 "$dir.log" | sed 's/^/      /' >&2
    FAILED+=("$name")
  fi
}

# pair DATASET PROTOCOL BASE ADV: BASE for PRE_EPOCHS, then BASE and ADV
# continued from it.
pair() {
  local ds="$1" proto="$2" base="$3" adv="$4" prefix="$1-$2"
  has_model "$base" || has_model "$adv" || return 0
  run_one "$prefix-$base-pre" "$ds" "$base" "$proto" \
      --epochs="$PRE_EPOCHS" --eval_every="$PRE_EVAL"
  if [[ ! -f "$RUNS/$prefix-$base-pre/results.json" ]]; then
    echo "    skipping $prefix-$base and $prefix-$adv: $prefix-$base-pre did not finish" >&2
    has_model "$base" && FAILED+=("$prefix-$base")
    has_model "$adv" && FAILED+=("$prefix-$adv")
    return 0
  fi
  local cont=(--init_checkpoint="$RUNS/$prefix-$base-pre" --epochs="$EPOCHS"
              --eval_every="$EVAL" --patience="$PATIENCE")
  if has_model "$base"; then run_one "$prefix-$base" "$ds" "$base" "$proto" "${cont[@]}"; fi
  if has_model "$adv"; then run_one "$prefix-$adv" "$ds" "$adv" "$proto" "${cont[@]}"; fi
}

echo "run_all: datasets $DATASETS; models $MODELS; protocols $PROTOCOLS;" \
     "epochs $PRE_EPOCHS + $EPOCHS; data $DATA_DIR; runs in $RUNS"
for ds in ${DATASETS//,/ }; do
  echo "== $ds"
  if ! check=$("$PYTHON" -m asasrec_tf.data --dataset="$ds" --data_dir="$DATA_DIR" \
                 --download=false --split=loo 2>&1); then
    echo "  data not available: $(echo "$check" | tail -n 1)"
    MISSING+=("$ds"); continue
  fi
  for proto in ${PROTOCOLS//,/ }; do
    if has_model mostpop; then
      run_one "$ds-$proto-mostpop" "$ds" mostpop "$proto"
    fi
    pair "$ds" "$proto" bpr apr
    pair "$ds" "$proto" sasrec asasrec
  done
done

echo "== robustness"
for dir in "$RUNS"/*-sasrec "$RUNS"/*-asasrec; do
  [[ -f "$dir/results.json" ]] || continue
  name=$(basename "$dir")
  ds_ok=0
  for ds in ${DATASETS//,/ }; do
    [[ "$name" == "$ds-paper-"* || "$name" == "$ds-clean-"* ]] && ds_ok=1
  done
  (( ds_ok )) || continue
  if [[ -f "$dir/robustness.json" ]] && (( ! FORCE )); then continue; fi
  echo "  > $name"
  "$PYTHON" -m asasrec_tf.evaluation.robustness --run_dir="$dir" >"$dir.robustness.log" 2>&1 ||
    { echo "    robustness of $name FAILED; see $dir.robustness.log" >&2; FAILED+=("$name robustness"); }
done

echo "== report"
unavailable=$(IFS=,; echo "${MISSING[*]-}")
if ! "$PYTHON" -m asasrec_tf.report --runs_dir="$RUNS" --out_dir="$OUT" \
    --unavailable="$unavailable"; then
  FAILED+=("report")
fi

echo "== summary"
echo "  runs finished: $DONE; skipped (done before): $SKIPPED; failed: ${#FAILED[@]};" \
     "wall time $((SECONDS - STARTED)) s"
if (( ${#MISSING[@]} )); then
  echo "  data not available for: ${MISSING[*]} (see ../shared/data/PROVENANCE.md" \
       "and 'python -m asasrec_tf.data --dataset=NAME' for how to get each)"
fi
if (( ${#FAILED[@]} )); then
  echo "  failed: ${FAILED[*]}" >&2
  exit 1
fi
echo "  tables and figures in $OUT/"
