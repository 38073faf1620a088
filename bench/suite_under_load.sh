#!/usr/bin/env bash
# The suite on a busy machine: a fresh clone of this checkout's HEAD, the README's set-up, then the
# README's test command RUNS times in a row (default 5) while HOGS CPU-bound processes (default 1, a
# whole core of a 2-core machine) run the whole time. Stops at the first failing run; prints one line
# per run (result, seconds, load average) and where the logs are.
#
#   bash bench/suite_under_load.sh             # 5 runs, 1 hog
#   RUNS=1 HOGS=2 bash bench/suite_under_load.sh
#
# Everything it starts is bounded: each run by RUN_TIMEOUT_S (default 1800 s), the hogs by the script's
# own exit (and by HOG_TIMEOUT_S, default 4 h, if the script is killed without running its trap).
set -euo pipefail
RUNS=${RUNS:-5}
HOGS=${HOGS:-1}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-1800}
HOG_TIMEOUT_S=${HOG_TIMEOUT_S:-14400}

src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=$(git -C "$src" rev-parse --short HEAD)
work=$(mktemp -d /tmp/suite-under-load.XXXXXX)
echo "== fresh clone of $rev in $work/phonebot"
git clone -q "$src" "$work/phonebot"
cd "$work/phonebot"
git checkout -q "$rev"

echo "== set-up (the README's command, without the test run)"
python3 -m venv .venv && .venv/bin/pip install -q -e '.[offline,test]'

hogs=()
cleanup() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$HOGS"); do
  timeout "$HOG_TIMEOUT_S" python3 -c 'while True: pass' &
  hogs+=($!)
done
echo "== $HOGS CPU-bound process(es) running; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

for run in $(seq "$RUNS"); do
  start=$(date +%s)
  if timeout "$RUN_TIMEOUT_S" .venv/bin/pytest -q -p no:cacheprovider >"$work/run$run.log" 2>&1; then
    result=passed
  else
    result=FAILED
  fi
  echo "run $run/$RUNS: $result in $(( $(date +%s) - start )) s; load $(cut -d' ' -f1-3 /proc/loadavg); $(tail -n1 "$work/run$run.log")"
  if [ "$result" = FAILED ]; then
    echo "log: $work/run$run.log"
    exit 1
  fi
done
echo "== $RUNS runs in a row passed with $HOGS CPU-bound process(es); logs in $work"
