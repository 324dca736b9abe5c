#!/usr/bin/env bash
# Issue 17's acceptance by hand (minutes, not part of make test): a PostgreSQL server of
# its own (.ci/postgres), the default study with 60 trials, four `hpsearch worker`
# processes, the server stopped once 20 trials have finished.
#   scripts/outage_check.sh            down for 60 s, then started: every worker exits 0
#   scripts/outage_check.sh --give-up  down for good with --retry-for 20s: each exits 2 with
#                                      one line; the server is started and one more worker
#                                      completes the budget
# Prints the exit codes, the trials' states and the retry lines. Needs root (runuser).
set -u
cd "$(dirname "$0")/.."
give_up=${1:-}
out=$(mktemp -d /tmp/hpsearch-outage-check.XXXXXX)
folder=$(mktemp -d /tmp/hpsearch-outage-postgres.XXXXXX)  # the server's user must enter it
url=$(.ci/postgres "$folder" 2>/dev/null) || { echo "cannot start PostgreSQL" >&2; exit 1; }
port=${url##*:}; port=${port%%/*}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg() { runuser -u postgres -- "$bin/pg_ctl" -D "$folder/data" "$@" > /dev/null; }
start_again() { pg -l "$folder/log" -w -o "-h 127.0.0.1 -p $port -k $folder -c fsync=off" start; }
states() {
    .venv/bin/python - "$url" <<'PY'
import collections, sys, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="mnist-lr-wd-init", storage=sys.argv[1])
finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
trained = [t for t in finished if t.intermediate_values]
print("states", dict(collections.Counter(t.state.name for t in study.trials)),
      "| finished", len(finished),
      "| unique numbers", len({t.number for t in study.trials}) == len(study.trials),
      "| trained trials with their curve",
      sum(len(t.user_attrs.get("val_accuracy", [])) == len(t.intermediate_values) for t in trained),
      "of", len(trained))
PY
}
limit=()
[ "$give_up" = --give-up ] && limit=(--retry-for 20s)
.venv/bin/hpsearch submit studies/mnist_lr_wd_init.toml --storage "$url" --trials 60 > /dev/null
pids=()
for i in 1 2 3 4; do
    .venv/bin/hpsearch worker --storage "$url" --no-progress "${limit[@]}" \
        > "$out/w$i.out" 2> "$out/w$i.err" &
    pids+=($!)
done
# psql, not `states`: a Python process per poll is slow next to short pruned trials, and the
# outage came near the end of the study instead of its middle.
finished() {
    "$bin/psql" "${url/postgresql+psycopg/postgresql}" -tAc \
        "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')" 2>/dev/null || echo 0
}
deadline=$(( $(date +%s) + 600 ))
until [ "$(finished)" -ge 20 ]; do
    kill -0 "${pids[@]}" 2>/dev/null || { echo "a worker ended before the outage" >&2; exit 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "no 20 finished trials in 10 min" >&2; exit 1; }
    sleep 0.2
done
echo "stopping the server at $(finished) finished trials"
pg -m fast stop
down=$(date +%s)
if [ "$give_up" != --give-up ]; then
    sleep 60  # the outage itself
    start_again
fi
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}"
    echo "worker $i exit $? after $(( $(date +%s) - down )) s of outage"
done
[ "$give_up" = --give-up ] && start_again && {
    .venv/bin/hpsearch worker --storage "$url" --no-progress > "$out/next.out" 2> "$out/next.err"
    echo "next worker exit $?"
}
echo "after: $(states)"
echo "retry lines per worker: $(for i in 1 2 3 4; do grep -c 'database unreachable' "$out/w$i.err"; done | tr '\n' ' ')"
echo "longest pause: $(grep -ho 'retrying in [0-9.]*' "$out"/w*.err | awk '{print $3}' | sort -n | tail -n 1) s"
echo "other stderr lines:"; grep -hv "WARNING hpsearch.storage.retry" "$out"/w*.err || echo "  none"
grep -l Traceback "$out"/*.err && echo "TRACEBACK FOUND" || echo "no traceback"
pg -m immediate stop 2>/dev/null
echo "logs in $out"
