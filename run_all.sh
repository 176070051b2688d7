#!/usr/bin/env bash
# Reproduces Table 2 and Figure 2 of ASASRec (SIGIR'20) on the authors'
# schedule, the ablation of what differs from their code, and a robustness
# table, into results/ (results/quick/ with --quick).
#
#   ./run_all.sh                                   # every dataset, every model
#   ./run_all.sh --datasets=video --models=sasrec,asasrec,asasrec-authors
#   ./run_all.sh --datasets=video --ablation       # ... and the ablation runs
#   ./run_all.sh --datasets=video --ablation --jobs=2   # two runs at a time
#   ./run_all.sh --quick --datasets=video          # smoke run, minutes
#   ./run_all.sh --datasets=video --seed=1         # the same schedule, seed 1
#   ./run_all.sh --datasets=video --protocols=clean --models=sasrec,asasrec-authors --loss=ce
#   ./run_all.sh --datasets=video --models=sasrec,asasrec-authors --sensitivity
#
# For each dataset and each protocol -- "paper" (split loo, full ranking,
# epoch selected on the test set, as the authors' code did) and "clean"
# (split loo_valid, selected on validation) -- it trains
#   <dataset>-<protocol>-mostpop
#   <dataset>-<protocol>-bpr-pre          BPR for BPR_PRE_EPOCHS epochs
#   <dataset>-<protocol>-bpr              ... continued without the adversary
#   <dataset>-<protocol>-apr              ... continued with it (APR)
#   <dataset>-<protocol>-sasrec-pre       SASRec for PRE_EPOCHS epochs
#   <dataset>-<protocol>-sasrec           ... continued without the adversary
#   <dataset>-<protocol>-asasrec          ... with it: Eq. 9 (input + output)
#   <dataset>-<protocol>-asasrec-authors  ... with it: the authors' step
# With --seed=N (N > 0) every name gets -seedN after the protocol
# (<dataset>-<protocol>-seedN-sasrec-pre, ...) and every run that seed;
# seed 0 (the default) keeps the names above. With --loss=gbce or ce (SASRec
# models only) every SASRec and ASASRec run trains with that loss and the
# names get -loss-NAME after the protocol (and seed): <dataset>-clean-loss-ce-
# sasrec-pre, ... With --sensitivity, the authors' step also continues the
# same checkpoint for every eps x lambda of SENS_EPS x SENS_REG other than
# the flagfiles' (0.5, 1), as <prefix>-sens-epsE-regL-asasrec-authors.
# With --bpr_pre_epochs=N other than 200 the BPR group's names get -bprN
# after the prefix (<dataset>-paper-bpr1000-bpr-pre, -bpr, -apr: the
# paper's 1,000 BPR epochs), beside the 200-epoch group of Table 2.
# Every continuation starts from its -pre run's last checkpoint -- weights,
# optimizer state and epoch number -- as the authors switch to ASASRec at a
# fixed epoch (1,000) from their last checkpoint (BPR/APR with a fresh
# Adagrad, as He et al.'s APR restores only the embeddings); so the members of a group
# start from the same state and get the same number of epochs (the paper's
# Figure 2 set-up). With --ablation, each difference from the authors' code
# is also switched on its own from the same start (the ablation runs, listed
# at the end of this help, and results/ablation.md). Each run uses flags/<dataset>/<model>.cfg. A run
# whose results.json exists is skipped (--force reruns it); an interrupted
# run resumes from its checkpoint. With --jobs=N, N runs go at once, in
# the order above, a continuation once its pre-run has ended. Ctrl-C or
# SIGTERM stops every run at once through SIGTERM (each checkpoints first)
# and exits 130 or 143; rerun the same command to resume. Then it measures
# robustness of the SASRec and ASASRec runs and writes table2.md/.csv, figure2_<dataset>.png,
# switch_<dataset>.png, ablation.md and robustness.md.
set -euo pipefail

cd "$(dirname "$0")"

DATASETS="video,ml-1m,beauty-bert4rec,beauty,brightkite,foursquare,yelp"
MODELS="mostpop,bpr,apr,sasrec,asasrec,asasrec-authors"
ALL_MODELS=",mostpop,bpr,apr,sasrec,asasrec,asasrec-authors,"
PROTOCOLS="paper,clean"
DATA_DIR=""
QUICK=0
FORCE=0
ABLATION=0
ABLATION_ONLY=""
PRE_EPOCHS=1000
EPOCHS=300
BPR_PRE_EPOCHS=200
BPR_TABLE2_PRE_EPOCHS=200  # Table 2's BPR group; another length gets -bprN
BPR_EPOCHS=100
PATIENCE=0
SEED=0
LOSS=bce
SENSITIVITY=0
JOBS=1
OUT=""
PYTHON="${PYTHON:-}"

# The authors' ASASRec step (feay1234/ASASRec): Gamma from the dropout-off
# loss over the whole item table, then one dropout-on pass whose hidden
# states give the clean loss and the loss with Delta on the output
# embeddings.
AUTHORS_STEP=(--adv_target=output --adv_passes=one)

# ABLATION: name, model, flags. Each switches one difference from the
# authors' set-up, starting from the same checkpoint as the main group:
# the form of the step (ASASRec only; (a)-(c)) and, for both arms so that
# the gain can be measured, the sampler, the optimizer state at the switch,
# Adam's epsilon, the loss's form and the row-sparse Adam of large catalogs.
ABLATION_RUNS=(
  "asasrec-authors-two-passes|asasrec|--adv_target=output"
  "asasrec-authors-gamma-target|asasrec|--adv_target=output --adv_passes=one --adv_gamma_uses=target"
  "asasrec-authors-gamma-dropout|asasrec|--adv_target=output --adv_passes=one --adv_gamma=dropout"
  "sasrec-first-item|sasrec|--target_first_item"
  "asasrec-authors-first-item|asasrec|--adv_target=output --adv_passes=one --target_first_item"
  "sasrec-adam-reset|sasrec|--init_optimizer=false"
  "asasrec-authors-adam-reset|asasrec|--adv_target=output --adv_passes=one --init_optimizer=false"
  "sasrec-keras-eps|sasrec|--adam_epsilon=1e-7"
  "asasrec-authors-keras-eps|asasrec|--adv_target=output --adv_passes=one --adam_epsilon=1e-7"
  "sasrec-loss-authors|sasrec|--loss=bce_authors"
  "asasrec-authors-loss-authors|asasrec|--adv_target=output --adv_passes=one --loss=bce_authors"
  "sasrec-lazy-adam|sasrec|--optimizer=lazy_adam"
  "asasrec-authors-lazy-adam|asasrec|--adv_target=output --adv_passes=one --optimizer=lazy_adam"
)

# The sensitivity grid (issue 23): eps and lambda of the authors' step.
SENS_EPS="0.05 0.1 0.5 1 2"
SENS_REG="0.1 1"
SENS_CENTRE="0.5|1"  # the flagfiles' values: the group's own asasrec-authors

# ABLATION GROUPS: name, flags. A difference that must hold from the first
# epoch gets a pre-run of its own (<prefix>-ablation-NAME-sasrec-pre), then
# its plain and authors'-step continuations (-sasrec, -asasrec-authors).
ABLATION_GROUPS=(
  "block-authors|--block=authors"
)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  cat <<EOF
Options:
  --datasets=LIST     comma-separated (default: $DATASETS)
  --models=LIST       comma-separated subset of $MODELS
  --protocols=LIST    comma-separated subset of $PROTOCOLS
  --data_dir=DIR      raw data (default: \$ASASREC_DATA_DIR if set, else
                      ~/.cache/asasrec_tf/raw, as python -m asasrec_tf.main)
  --pre_epochs=N      SASRec epochs before the switch (default $PRE_EPOCHS,
                      the authors' adv_epoch)
  --epochs=N          epochs of the SASRec/ASASRec continuations (default
                      $EPOCHS)
  --bpr_pre_epochs=N  BPR epochs before APR is switched on (default
                      $BPR_PRE_EPOCHS; another N adds -bprN to the BPR
                      group's names)
  --bpr_epochs=N      epochs of the BPR/APR continuations (default $BPR_EPOCHS)
  --patience=N        stop a continuation after N evaluations without
                      improvement (default $PATIENCE: never stop early)
  --ablation          also the ablation runs of each SASRec group
  --ablation_runs=LIST  only these of them (names as in ABLATION_RUNS and
                      ABLATION_GROUPS below, e.g. block-authors)
  --seed=N            seed of weights, dropout and sampling of every run
                      (default $SEED); N > 0 adds -seedN to the run names
  --loss=NAME         bce (default), gbce or ce for the SASRec and ASASRec
                      runs; gbce and ce add -loss-NAME to the run names
  --sensitivity       also the authors' step for each eps in ($SENS_EPS)
                      and lambda in ($SENS_REG) from the same checkpoint
  --jobs=N            run N runs at a time (default $JOBS), a continuation
                      once its pre-run has finished; each gets
                      TF_NUM_INTRAOP_THREADS = cores / N and one inter-op
                      thread unless those are set
  --quick             2 + 2 epochs into results/quick/, for a smoke run
  --out=DIR           where runs (DIR/runs), tables and figures go
                      (default results/, or results/quick/ with --quick)
  --force             rerun runs that have finished
  -h, --help          this text

Ablation runs (--ablation: all; --ablation_runs=LIST: some), each from the
checkpoint of its group's -pre run unless it has a pre-run of its own:
EOF
  local entry name model extra
  for entry in "${ABLATION_RUNS[@]}"; do
    IFS='|' read -r name model extra <<<"$entry"
    printf '  %-30s %s %s\n' "$name" "$model" "$extra"
  done
  for entry in "${ABLATION_GROUPS[@]}"; do
    IFS='|' read -r name extra <<<"$entry"
    printf '  %-30s %s\n' "$name" "own pre-run, then sasrec and the authors' step, all $extra"
  done
}

for arg in "$@"; do
  case "$arg" in
    --datasets=*) DATASETS="${arg#*=}" ;;
    --models=*) MODELS="${arg#*=}" ;;
    --protocols=*) PROTOCOLS="${arg#*=}" ;;
    --data_dir=*) DATA_DIR="${arg#*=}" ;;
    --pre_epochs=*) PRE_EPOCHS="${arg#*=}" ;;
    --epochs=*) EPOCHS="${arg#*=}" ;;
    --bpr_pre_epochs=*) BPR_PRE_EPOCHS="${arg#*=}" ;;
    --bpr_epochs=*) BPR_EPOCHS="${arg#*=}" ;;
    --ablation) ABLATION=1 ;;
    --ablation_runs=*) ABLATION=1; ABLATION_ONLY="${arg#*=}" ;;
    --patience=*) PATIENCE="${arg#*=}" ;;
    --out=*) OUT="${arg#*=}" ;;
    --seed=*) SEED="${arg#*=}" ;;
    --loss=*) LOSS="${arg#*=}" ;;
    --sensitivity) SENSITIVITY=1 ;;
    --jobs=*) JOBS="${arg#*=}" ;;
    --quick) QUICK=1 ;;
    --force) FORCE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

for n in "$PRE_EPOCHS" "$EPOCHS" "$BPR_PRE_EPOCHS" "$BPR_EPOCHS" "$PATIENCE" "$SEED" "$JOBS"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "run_all.sh: '$n' is not a number" >&2; exit 2; }
done
JOBS=$((10#$JOBS))
(( JOBS >= 1 )) || { echo "run_all.sh: --jobs must be at least 1" >&2; exit 2; }
for m in ${MODELS//,/ }; do
  [[ "$ALL_MODELS" == *",$m,"* ]] ||
    { echo "run_all.sh: unknown model '$m' (expected some of ${ALL_MODELS:1:-1})" >&2; exit 2; }
done
for p in ${PROTOCOLS//,/ }; do
  [[ "$p" == paper || "$p" == clean ]] ||
    { echo "run_all.sh: unknown protocol '$p' (expected paper or clean)" >&2; exit 2; }
done
KNOWN_ABLATIONS=","
for entry in "${ABLATION_RUNS[@]}" "${ABLATION_GROUPS[@]}"; do
  KNOWN_ABLATIONS+="${entry%%|*},"
done
for a in ${ABLATION_ONLY//,/ }; do
  [[ "$KNOWN_ABLATIONS" == *",$a,"* ]] ||
    { echo "run_all.sh: unknown ablation run '$a' (see --help)" >&2; exit 2; }
done
case "$LOSS" in
  bce) ;;
  gbce|ce)
    for m in ${MODELS//,/ }; do
      [[ "$m" == sasrec || "$m" == asasrec || "$m" == asasrec-authors ]] ||
        { echo "run_all.sh: --loss=$LOSS trains SASRec models only; drop '$m' from --models" >&2; exit 2; }
    done ;;
  *) echo "run_all.sh: unknown loss '$LOSS' (expected bce, gbce or ce)" >&2; exit 2 ;;
esac
for d in ${DATASETS//,/ }; do
  [[ -d "flags/$d" ]] ||
    { echo "run_all.sh: unknown dataset '$d' (no flags/$d/)" >&2; exit 2; }
done

if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if (( JOBS > 1 )); then
  # N processes share the cores; TensorFlow's default (every core each)
  # oversubscribes them.
  threads=$(( $(nproc 2>/dev/null || echo 1) / JOBS ))
  export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-$(( threads > 0 ? threads : 1 ))}"
  export TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}"
fi
if [[ -z "$DATA_DIR" ]]; then
  DATA_DIR="${ASASREC_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asasrec_tf/raw}"
fi

BPR_PRE_EPOCHS=$((10#$BPR_PRE_EPOCHS))  # 0200 is 200, not octal
BPR_TAG=""
if (( BPR_PRE_EPOCHS != BPR_TABLE2_PRE_EPOCHS )); then BPR_TAG="-bpr$BPR_PRE_EPOCHS"; fi

EVAL=10
if (( QUICK )); then
  OUT="${OUT:-results/quick}"
  PRE_EPOCHS=2; EPOCHS=2; BPR_PRE_EPOCHS=2; BPR_EPOCHS=2; PATIENCE=0; EVAL=1
fi
OUT="${OUT:-results}"
RUNS="$OUT/runs"
mkdir -p "$RUNS"

has_model() { [[ ",$MODELS," == *",$1,"* ]]; }

# The prefix of a (dataset, protocol)'s run names: <dataset>-<protocol>,
# then -seedN for a seed other than 0 and -loss-NAME for a loss other than
# bce.
prefix_of() {
  local p="$1-$2"
  if (( SEED )); then p+="-seed$SEED"; fi
  if [[ "$LOSS" != bce ]]; then p+="-loss-$LOSS"; fi
  echo "$p"
}
LOSS_FLAGS=()
if [[ "$LOSS" != bce ]]; then LOSS_FLAGS=(--loss="$LOSS"); fi

protocol_flags() {
  case "$1" in
    paper) echo "--split=loo --select_on=test --select_metric=ndcg@100" ;;
    clean) echo "--split=loo_valid --select_on=valid --select_metric=ndcg@10" ;;
  esac
}

DONE=0; SKIPPED=0; FAILED=(); MISSING=(); STARTED=$SECONDS

# finished DIR: the run in DIR wrote its results (an empty or torn
# results.json is not a finished run: the program says what is wrong).
finished() { [[ -f "$1/results.json" ]] && grep -q '"metrics"' "$1/results.json"; }

# The plan: every run in the order a single queue takes them, each with the
# plan index of the run whose checkpoint it continues (- for none) and its
# program flags.
PLAN_NAMES=(); PLAN_DEPS=(); PLAN_ARGS=()

# plan NAME DEP DATASET MODEL PROTOCOL [extra flags...]: DEP, the run NAME
# continues (- for none), is in the plan already.
plan() {
  local name="$1" dep="$2" ds="$3" model="$4" proto="$5" args j; shift 5
  if [[ "$dep" != - ]]; then
    for j in "${!PLAN_NAMES[@]}"; do
      if [[ "${PLAN_NAMES[$j]}" == "$dep" ]]; then dep=$j; break; fi
    done
    [[ "$dep" =~ ^[0-9]+$ ]] || { echo "run_all.sh: $name continues $dep, which is not planned" >&2; exit 1; }
  fi
  # shellcheck disable=SC2046
  printf -v args '%q ' --flagfile="flags/$ds/$model.cfg" \
      --data_dir="$DATA_DIR" --download=false --results_dir="$RUNS" \
      --run_name="$name" --checkpoint_every="$EVAL" --seed="$SEED" \
      $(protocol_flags "$proto") "$@"
  PLAN_NAMES+=("$name"); PLAN_DEPS+=("$dep"); PLAN_ARGS+=("$args")
}

# run_entry I: run plan entry I (its dependency has ended) and record how it
# ended in $STATE: ok, skipped (finished before) or failed.
run_entry() {
  local i="$1" name="${PLAN_NAMES[$1]}" dep="${PLAN_DEPS[$1]}"
  local dir="$RUNS/$name" restart=() args began rc
  if [[ "$dep" != - ]] && ! finished "$RUNS/${PLAN_NAMES[$dep]}"; then
    echo "    skipping $name: ${PLAN_NAMES[$dep]} did not finish" >&2
    echo failed >"$STATE/$i"; return 0
  fi
  if finished "$dir" && (( ! FORCE )); then
    echo "  = $name: done before, skipped (--force reruns it)"
    echo skipped >"$STATE/$i"; return 0
  fi
  # --restart deletes only the run's own files (never rm -rf here).
  if (( FORCE )); then restart=(--restart); : >"$dir.log"; fi
  began=$SECONDS
  echo "  > $name ... (log: $dir.log)"
  eval "args=(${PLAN_ARGS[$i]})"
  # In the background, so that a trap can pass Ctrl-C or SIGTERM on at once
  # (the program then checkpoints and exits 143; see pass_on).
  "$PYTHON" -m asasrec_tf.main "${args[@]}" "${restart[@]}" \
      >>"$dir.log" 2>&1 </dev/null &
  CHILD=$!; rc=0; wait "$CHILD" || rc=$?; CHILD=""
  if (( rc == 130 || rc == 143 )); then  # Ctrl-C or SIGTERM: it checkpointed
    echo "    $name interrupted [$((SECONDS - began)) s]; rerun the same command to resume" >&2
    exit "$rc"
  elif (( rc == 0 )); then
    echo "    $name: $(tail -n 1 "$dir.log") [$((SECONDS - began)) s]"
    echo ok >"$STATE/$i"
  else
    echo "    $name FAILED [$((SECONDS - began)) s]; last lines of $dir.log:" >&2
    tail -n 5 "$dir.log" | sed 's/^/      /' >&2
    echo failed >"$STATE/$i"
  fi
}

# worker: take the plan's runs in order, each claimed with an atomic mkdir,
# a continuation only once the run it continues has ended; return when
# every run is taken.
worker() {
  local i dep claimed waiting
  while :; do
    claimed=0; waiting=0
    for i in "${!PLAN_NAMES[@]}"; do
      [[ -e "$STATE/$i" || -e "$STATE/$i.claim" ]] && continue
      dep="${PLAN_DEPS[$i]}"
      if [[ "$dep" != - && ! -e "$STATE/$dep" ]]; then waiting=1; continue; fi
      mkdir "$STATE/$i.claim" 2>/dev/null || continue
      run_entry "$i"; claimed=1; break
    done
    (( claimed )) && continue
    (( waiting )) || return 0
    sleep 1
  done
}

# pass_on STATUS: stop the running program with SIGTERM (it checkpoints
# first), wait for it and exit with STATUS.
pass_on() {
  if [[ -n "$CHILD" ]]; then kill -TERM "$CHILD" 2>/dev/null; wait "$CHILD" || true; fi
  exit "$1"
}

# run_plan: the plan's runs, --jobs at a time. A run interrupted by Ctrl-C
# or SIGTERM (it checkpoints first) ends the script with its status.
run_plan() {
  local i w workers=()
  STATE=$(mktemp -d "${TMPDIR:-/tmp}/run_all.XXXXXX")
  trap 'rm -r "$STATE"' EXIT  # this script's own scratch directory
  CHILD=""
  if (( JOBS > 1 )); then
    for ((w = 0; w < JOBS; w++)); do
      ( trap 'pass_on 143' TERM; worker ) &
      workers+=($!)
    done
    trap 'kill -TERM "${workers[@]}" 2>/dev/null; wait; exit 130' INT
    trap 'kill -TERM "${workers[@]}" 2>/dev/null; wait; exit 143' TERM
    wait "${workers[@]}"
  else
    trap 'pass_on 130' INT
    trap 'pass_on 143' TERM
    worker
  fi
  trap - INT TERM
  for i in "${!PLAN_NAMES[@]}"; do
    case "$(cat "$STATE/$i" 2>/dev/null)" in
      ok) DONE=$((DONE + 1)) ;;
      skipped) SKIPPED=$((SKIPPED + 1)) ;;
      *) FAILED+=("${PLAN_NAMES[$i]}") ;;
    esac
  done
}

# group DATASET PROTOCOL BASE PRE_EPOCHS EPOCHS CONTINUATION...: BASE for
# PRE_EPOCHS epochs, then each CONTINUATION (a model of --models) from its
# last checkpoint for EPOCHS epochs.
group() {
  local ds="$1" proto="$2" base="$3" pre_epochs="$4" epochs="$5"
  local prefix; prefix=$(prefix_of "$1" "$2")
  if [[ "$base" == bpr ]]; then prefix+="$BPR_TAG"; fi
  shift 5
  local wanted=0 m
  for m in "$base" "$@"; do has_model "$m" && wanted=1; done
  (( wanted )) || return 0
  local loss=()
  if [[ "$base" == sasrec ]]; then loss=("${LOSS_FLAGS[@]}"); fi
  local pre="$prefix-$base-pre"
  plan "$pre" - "$ds" "$base" "$proto" \
      --epochs="$pre_epochs" --eval_every="$EVAL" "${loss[@]}"
  local cont=(--init_checkpoint="$RUNS/$pre" --epochs="$epochs"
              --eval_every="$EVAL" --patience="$PATIENCE" "${loss[@]}")
  # He et al.'s APR restores only the embeddings of the trained BPR
  # (a fresh Adagrad); the authors' ASASRec restores everything.
  if [[ "$base" == bpr ]]; then cont+=(--init_optimizer=false); fi
  for m in "$base" "$@"; do
    has_model "$m" || continue
    case "$m" in
      asasrec-authors) plan "$prefix-$m" "$pre" "$ds" asasrec "$proto" "${cont[@]}" "${AUTHORS_STEP[@]}" ;;
      *) plan "$prefix-$m" "$pre" "$ds" "$m" "$proto" "${cont[@]}" ;;
    esac
  done
  if (( SENSITIVITY )) && [[ "$base" == sasrec ]]; then
    local eps reg
    for eps in $SENS_EPS; do
      for reg in $SENS_REG; do
        [[ "$eps|$reg" == "$SENS_CENTRE" ]] && continue
        plan "$prefix-sens-eps$eps-reg$reg-asasrec-authors" "$pre" "$ds" \
            asasrec "$proto" "${cont[@]}" "${AUTHORS_STEP[@]}" \
            --adv_eps="$eps" --adv_reg="$reg"
      done
    done
  fi
  if (( ABLATION )) && [[ "$base" == sasrec ]]; then
    local entry name model extra
    for entry in "${ABLATION_RUNS[@]}"; do
      IFS='|' read -r name model extra <<<"$entry"
      wanted_ablation "$name" || continue
      # shellcheck disable=SC2086
      plan "$prefix-ablation-$name" "$pre" "$ds" "$model" "$proto" "${cont[@]}" $extra
    done
    for entry in "${ABLATION_GROUPS[@]}"; do
      IFS='|' read -r name extra <<<"$entry"
      wanted_ablation "$name" || continue
      ablation_group "$ds" "$proto" "$prefix-ablation-$name" "$pre_epochs" \
          "$epochs" $extra
    done
  fi
}

# ablation_group DATASET PROTOCOL NAME PRE_EPOCHS EPOCHS FLAGS...: SASRec
# with FLAGS for PRE_EPOCHS epochs (NAME-sasrec-pre), then its plain and
# authors'-step continuations with FLAGS.
ablation_group() {
  local ds="$1" proto="$2" name="$3" pre_epochs="$4" epochs="$5"
  shift 5
  plan "$name-sasrec-pre" - "$ds" sasrec "$proto" --epochs="$pre_epochs" \
      --eval_every="$EVAL" "$@"
  local cont=(--init_checkpoint="$RUNS/$name-sasrec-pre" --epochs="$epochs"
              --eval_every="$EVAL" --patience="$PATIENCE")
  plan "$name-sasrec" "$name-sasrec-pre" "$ds" sasrec "$proto" "${cont[@]}" "$@"
  plan "$name-asasrec-authors" "$name-sasrec-pre" "$ds" asasrec "$proto" \
      "${cont[@]}" "${AUTHORS_STEP[@]}" "$@"
}

wanted_ablation() { [[ -z "$ABLATION_ONLY" || ",$ABLATION_ONLY," == *",$1,"* ]]; }

if (( QUICK )); then
  echo "run_all: SMOKE TEST (--quick: 2 + 2 epochs): checks the pipeline; its numbers say nothing about the paper"
fi
echo "run_all: datasets $DATASETS; models $MODELS; protocols $PROTOCOLS;" \
     "SASRec epochs $PRE_EPOCHS + $EPOCHS, BPR $BPR_PRE_EPOCHS + $BPR_EPOCHS;" \
     "ablation $ABLATION; seed $SEED; loss $LOSS; sensitivity $SENSITIVITY;" \
     "jobs $JOBS; data $DATA_DIR; runs in $RUNS"
for ds in ${DATASETS//,/ }; do
  echo "== $ds"
  if ! check=$("$PYTHON" -m asasrec_tf.data --dataset="$ds" --data_dir="$DATA_DIR" \
                 --download=false --split=loo 2>&1); then
    echo "  data not available: $(echo "$check" | tail -n 1)"
    MISSING+=("$ds"); continue
  fi
  for proto in ${PROTOCOLS//,/ }; do
    if has_model mostpop; then
      plan "$(prefix_of "$ds" "$proto")-mostpop" - "$ds" mostpop "$proto"
    fi
    group "$ds" "$proto" bpr "$BPR_PRE_EPOCHS" "$BPR_EPOCHS" apr
    group "$ds" "$proto" sasrec "$PRE_EPOCHS" "$EPOCHS" asasrec asasrec-authors
  done
done

echo "== runs: ${#PLAN_NAMES[@]}, $JOBS at a time"
run_plan

echo "== robustness"
for dir in "$RUNS"/*-sasrec "$RUNS"/*-asasrec "$RUNS"/*-asasrec-authors; do
  finished "$dir" || continue
  name=$(basename "$dir")
  [[ "$name" == *-sens-* ]] && continue  # the grid's runs: gains only
  ds_ok=0
  for ds in ${DATASETS//,/ }; do
    [[ "$name" == "$ds-paper-"* || "$name" == "$ds-clean-"* ]] && ds_ok=1
  done
  (( ds_ok )) || continue
  if [[ -f "$dir/robustness.json" ]] && (( ! FORCE )); then continue; fi
  echo "  > $name"
  "$PYTHON" -m asasrec_tf.robustness --run_dir="$dir" >"$dir.robustness.log" 2>&1 ||
    { echo "    robustness of $name FAILED; see $dir.robustness.log" >&2; FAILED+=("$name robustness"); }
done

echo "== report"
unavailable=$(IFS=,; echo "${MISSING[*]-}")
if (( QUICK )); then report_mode=(--smoke); else report_mode=(--archive_dir="$OUT/table2_runs"); fi
if ! "$PYTHON" -m asasrec_tf.report --runs_dir="$RUNS" --out_dir="$OUT" \
    --unavailable="$unavailable" "${report_mode[@]}"; then
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
if (( QUICK )); then
  echo "  SMOKE TEST tables and figures in $OUT/ (not results)"
else
  echo "  tables and figures in $OUT/"
fi
