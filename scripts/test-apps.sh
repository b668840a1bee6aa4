#!/usr/bin/env bash
# End-to-end test of the programs (run by CTest as "apps"): simulate two small events, train hmambav2-S for one
# short epoch, resume it (at the run's rate, and with --lr at a new one), run infer on an event (in the training
# sectors and whole), train and infer the pile-up task, check that bench marks a warm-up it reports alone, and check
# that bad inputs give a one-line error and a non-zero exit: a missing column, a NaN coordinate, an empty event, a
# checkpoint of another model, a missing file.
# Usage: scripts/test-apps.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "$1" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
FAIL=0
ok() { echo "ok: $*"; }
bad() { echo "FAILED: $*"; FAIL=1; }
# expect_error NAME PATTERN CMD...: the command must exit non-zero with one stderr line matching PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 2
  "$@" > "$T/out.txt" 2> "$T/err.txt"
  local rc=$?
  local lines
  lines=$(grep -c . "$T/err.txt")
  if [[ $rc -ne 0 && $lines -eq 1 ]] && grep -q -- "$pattern" "$T/err.txt"; then ok "$name: $(cat "$T/err.txt")"
  else bad "$name (exit $rc, $lines stderr lines): $(head -3 "$T/err.txt")"; fi
}

"$BUILD/apps/simulate" --events 2 --out "$T/events" --mu 5 --seed 3 --pixel-only --gzip > /dev/null || bad "simulate"
export HEP_CACHE="$T/cache"
"$BUILD/apps/train" --model hmambav2 --size S --data "$T/events" --sectors 10 --epochs 1 --max-steps 2 --lr 1e-3 \
  --step-size 2 --seed 5 --loss-pairs knn --out "$T/run" --threads 2 > "$T/train.txt" 2>&1 || { bad "train"; cat "$T/train.txt"; }
[[ -f "$T/run/best.safetensors" && -f "$T/run/metrics.jsonl" && -f "$T/run/final.json" ]] && ok "train outputs" || bad "train outputs"
# the S preset's input standardisation: statistics of the training split, stored in the run's config
grep -q "input standardisation from" "$T/train.txt" && grep -A1 '"input_standardization": {' "$T/run/run.json" | grep -q '"mean": \[' \
  && ok "input standardisation from the training data" || bad "input standardisation"
# a bad model config fails before any data is simulated or the run folder made
echo '{"vertex_z_estimate": "beam_spot"}' > "$T/bad-config.json"
expect_error "bad model config" "unknown vertex z estimate 'beam_spot'" env HEP_CACHE="$T/cache-bad" "$BUILD/apps/train" \
  --model hmambav2 --size S --config "$T/bad-config.json" --sim-events 2 --out "$T/bad-run"
[[ ! -e "$T/cache-bad" && ! -e "$T/bad-run" ]] && ok "bad model config: nothing simulated or written" \
  || bad "bad model config: data or run folder made"
# two resumed epochs with nothing but --out: the run's own data, seed and schedule (its base rate 1e-3 halved after
# epoch 2, not the reference's rate and step for hmambav2)
expect_error "resume with other data" "run's own data" "$BUILD/apps/train" --out "$T/run" --resume --sim-events 3
"$BUILD/apps/train" --out "$T/run" --resume --epochs 3 --max-steps 2 --threads 2 > "$T/resume.txt" 2>&1 \
  && [[ $(wc -l < "$T/run/metrics.jsonl") -eq 3 ]] && sed -n 2p "$T/run/metrics.jsonl" | grep -q '"lr":0.001,' \
  && tail -1 "$T/run/metrics.jsonl" | grep -q '"lr":0.0005,' && grep -q '"seed": 5,' "$T/run/run.json" \
  && grep -q '"step_size": 2,' "$T/run/run.json" && ! grep -qi "simulat" "$T/resume.txt" \
  && ok "resume continues at epoch 2 with the run's data, seed and schedule" || { bad "resume"; tail -5 "$T/resume.txt"; }
! grep -q "input standardisation from" "$T/resume.txt" && ok "resume keeps the run's input statistics" \
  || bad "resume recomputed the input statistics"
"$BUILD/apps/train" --out "$T/run" --resume --epochs 4 --max-steps 2 --lr 2e-4 --data "$T/events" --threads 2 > "$T/resume2.txt" 2>&1 \
  && grep -q "resuming at lr 0.0002" "$T/resume2.txt" && tail -1 "$T/run/metrics.jsonl" | grep -q '"lr":0.0002' \
  && ok "resume --lr continues at the new rate" || { bad "resume --lr"; tail -5 "$T/resume2.txt"; }
# --schedule cosine: per step, one warm-up step from lr / 10, then cosine annealing to 0 at the last of 2 x 2 steps
# (1e-3 x (1 + cos(pi / 3)) / 2 = 7.5e-4 after epoch 1); the run stops there at its time limit, and the resumed run
# keeps the schedule and its 2 steps per epoch and ends at 0
"$BUILD/apps/train" --model hmambav2 --size S --data "$T/events" --sectors 10 --epochs 2 --max-steps 2 --lr 1e-3 \
  --schedule cosine --warmup 1 --time-limit 1e-4 --seed 5 --loss-pairs knn --out "$T/cos" --threads 2 > "$T/cos.txt" 2>&1 \
  && "$BUILD/apps/train" --out "$T/cos" --resume --threads 2 > "$T/cos2.txt" 2>&1 \
  && grep -q '"schedule": "cosine",' "$T/cos/run.json" && sed -n 1p "$T/cos/metrics.jsonl" | grep -q '"lr":0.00075' \
  && tail -1 "$T/cos/metrics.jsonl" | grep -q '"lr":0.0,' && ok "cosine schedule, resumed" \
  || { bad "cosine schedule"; tail -3 "$T/cos.txt" "$T/cos2.txt"; cat "$T/cos/metrics.jsonl"; }
# the time budget: a --finish-by time already past stops after the first epoch (which always runs); a distant one,
# with a --time-limit that allows more, lets all epochs run
"$BUILD/apps/train" --model hmambav2 --size S --data "$T/events" --sectors 10 --epochs 3 --max-steps 1 --seed 5 \
  --loss-pairs knn --finish-by $(( $(date +%s) - 1 )) --out "$T/fin" --threads 2 > "$T/fin.txt" 2>&1 \
  && [[ $(wc -l < "$T/fin/metrics.jsonl") -eq 1 ]] && grep -q "time limit: stopping after epoch 1" "$T/fin.txt" \
  && "$BUILD/apps/train" --model hmambav2 --size S --data "$T/events" --sectors 10 --epochs 2 --max-steps 1 --seed 5 \
       --loss-pairs knn --finish-by $(( $(date +%s) + 3600 )) --time-limit 60 --out "$T/fin2" --threads 2 > "$T/fin2.txt" 2>&1 \
  && [[ $(wc -l < "$T/fin2/metrics.jsonl") -eq 2 ]] && ok "the time budget (--finish-by, --time-limit)" \
  || { bad "the time budget"; tail -3 "$T/fin.txt" "$T/fin2.txt"; }
# the resumed runs kept the run's kNN loss pairs instead of the default radius pairs (no radius cache was built)
[[ -z $(find "$T" -type d -name 'cache-*-radius') && -n $(find "$T" -type d -name 'cache-*-knn') ]] \
  && ok "resume keeps the run's loss pairs" || bad "resume keeps the run's loss pairs"
EV="$T/events/event000001000"
"$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --event "$EV" --out "$T/infer" --plot > "$T/infer.txt" 2>&1 \
  && grep -q trackml_score "$T/infer/metrics.json" && grep -q 'accuracy@0.9 |eta| 0-1' "$T/infer/metrics.json" \
  && grep -q '"triplet seeds": [0-9]' "$T/infer/metrics.json" \
  && [[ -s "$T/infer/submission.csv" && -s "$T/infer/event.svg" ]] && ok "infer outputs" || { bad "infer"; cat "$T/infer.txt"; }
grep -q "note: no detectors.csv in or next to $T/events" "$T/infer.txt" \
  && ok "infer notes the built-in geometry" || bad "infer: no note for the built-in geometry"
# infer embeds the event in the 10 sectors the model was trained on; every pixel hit once, as with the whole event
"$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --event "$EV" --sectors 1 --out "$T/infer1" > "$T/infer1.txt" 2>&1 \
  && grep -q '"sectors": 10$' "$T/infer/metrics.json" && grep -q '"sectors": 1$' "$T/infer1/metrics.json" \
  && [[ $(wc -l < "$T/infer/submission.csv") -eq $(wc -l < "$T/infer1/submission.csv") ]] \
  && [[ -z $(cut -d, -f1 "$T/infer/submission.csv" | sort | uniq -d) ]] \
  && ok "infer in the training sectors: every hit once" || { bad "infer sectors"; cat "$T/infer1.txt"; }

# pile-up: train a few steps on simulated pile-up events, then infer on one event (task read from the checkpoint)
"$BUILD/apps/train" --task pileup --model hmambav2 --size S --pileup-events 10 --epochs 1 --max-steps 1 \
  --out "$T/pu" --threads 2 > "$T/pu.txt" 2>&1 && grep -q PUPPI "$T/pu/final.json" && ok "pile-up train" \
  || { bad "pile-up train"; tail -5 "$T/pu.txt"; }
PU_EVENT=$(ls "$T"/cache/pileup-*/pileup_event*.safetensors | tail -1)
# a held-out pile-up set from apps/simulate, and infer over the whole folder
"$BUILD/apps/simulate" --pileup --events 3 --seed 9 --out "$T/pu-held-out" > /dev/null \
  && "$BUILD/apps/infer" --checkpoint "$T/pu/best.safetensors" --event "$T/pu-held-out" --out "$T/pu-set" > "$T/pu-set.txt" 2>&1 \
  && grep -q '"events": 3' "$T/pu-set/metrics.json" && ok "pile-up infer on a dataset folder" \
  || { bad "pile-up infer on a dataset folder"; cat "$T/pu-set.txt"; }
"$BUILD/apps/infer" --checkpoint "$T/pu/best.safetensors" --event "$PU_EVENT" --out "$T/pu-infer" --plot > "$T/pu-infer.txt" 2>&1 \
  && grep -q average_precision "$T/pu-infer/metrics.json" && [[ -s "$T/pu-infer/probabilities.csv" && -s "$T/pu-infer/eta_phi.svg" ]] \
  && ok "pile-up infer outputs" || { bad "pile-up infer"; cat "$T/pu-infer.txt"; }
expect_error "pile-up checkpoint as tracking" "not a tracking model" "$BUILD/apps/infer" --checkpoint "$T/pu/best.safetensors" --event "$EV" --task tracking --out "$T/o7"

# bad inputs
mkdir -p "$T/bad"
for f in "$T"/events/event000001000-*; do cp "$f" "$T/bad/"; done
gunzip -f "$T"/bad/*.gz
awk -F, 'BEGIN{OFS=","} NR==1{$3="zz"} {print}' "$T/bad/event000001000-hits.csv" > "$T/bad/x" && mv "$T/bad/x" "$T/bad/event000001000-hits.csv"
expect_error "missing column" "hits.csv" "$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --event "$T/bad/event000001000" --out "$T/o1"
for f in "$T"/events/event000001000-*; do cp "$f" "$T/bad/"; done
gunzip -f "$T"/bad/*.gz
awk -F, 'BEGIN{OFS=","} NR==5{$2="nan"} {print}' "$T/bad/event000001000-hits.csv" > "$T/bad/x" && mv "$T/bad/x" "$T/bad/event000001000-hits.csv"
expect_error "NaN coordinate" "" "$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --event "$T/bad/event000001000" --out "$T/o2"
[[ ! -e "$T/o2/submission.csv" ]] && ok "no output after an error" || bad "output written despite an error"
mkdir -p "$T/empty"
for kind in hits cells particles truth; do head -1 "$T/bad/event000001000-$kind.csv" > "$T/empty/event000000001-$kind.csv"; done
expect_error "empty event" "no pixel hits\|empty" "$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --event "$T/empty/event000000001" --out "$T/o3"
expect_error "checkpoint of another model" "hmambav2" "$BUILD/apps/infer" --checkpoint "$T/run/best.safetensors" --model hept --event "$EV" --out "$T/o4"
expect_error "missing checkpoint" "nope.safetensors" "$BUILD/apps/infer" --checkpoint "$T/nope.safetensors" --event "$EV" --out "$T/o5"
expect_error "pile-up with a tracking schedule" "for tracking" "$BUILD/apps/train" --task pileup --model hmambav2 \
  --schedule cosine --out "$T/o7"
# bench: a warm-up over --budget-s is reported alone, marked as a cold run, and the model's larger N are skipped;
# within the budget a timed run follows and its time is not marked (the first table's row: the times)
"$BUILD/apps/bench" --models hmambav2 --sizes 200,400 --repeats 1 --budget-s 1e-9 --threads 2 --out "$T/bench" \
  > "$T/bench.txt" 2> "$T/bench-err.txt" \
  && grep -m1 '| hmambav2 |' "$T/bench.txt" | grep -q '| [0-9.e-]*\* / [0-9.e-]*\* | skipped |$' \
  && grep -A1 '"timed_runs": {' "$T/bench/bench.json" | grep -q '"infer": 0' \
  && "$BUILD/apps/bench" --models hmambav2 --sizes 200 --repeats 1 --budget-s 60 --threads 2 --out "$T/bench-warm" \
  > "$T/bench.txt" 2> "$T/bench-err.txt" \
  && grep -m1 '| hmambav2 |' "$T/bench.txt" | grep -q '| [0-9.e-]* / [0-9.e-]* |$' \
  && ok "bench marks a warm-up reported alone, and only that" || { bad "bench"; cat "$T/bench.txt" "$T/bench-err.txt"; }
# bench --merge: the warm run's row replaces the cold one of the same N, the skipped larger N stays; runs on another
# thread count are refused
"$BUILD/apps/bench" --merge "$T/bench/bench.json,$T/bench-warm/bench.json" --out "$T/bench-merged" > "$T/bench.txt" \
  && grep -m1 '| hmambav2 |' "$T/bench.txt" | grep -q '| [0-9.e-]* / [0-9.e-]* | skipped |$' \
  && [[ -s "$T/bench-merged/bench-train.svg" ]] && grep -q '"merged_from"' "$T/bench-merged/bench.json" \
  && ok "bench --merge takes the later measured row" || { bad "bench --merge"; cat "$T/bench.txt"; }
sed 's/"threads": 2/"threads": 1/' "$T/bench-warm/bench.json" > "$T/bench-1thread.json"
expect_error "bench --merge of other thread counts" "threads" "$BUILD/apps/bench" --merge \
  "$T/bench/bench.json,$T/bench-1thread.json" --out "$T/bench-merged2"
echo '{"runs": []}' > "$T/bench-none.json"
expect_error "bench --merge of no results" "no bench results" "$BUILD/apps/bench" --merge "$T/bench-none.json" \
  --out "$T/bench-merged3"
expect_error "unknown model" "unknown model" "$BUILD/apps/train" --model nosuchmodel --data "$T/events" --out "$T/o6"
exit $FAIL
