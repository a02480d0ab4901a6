#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench_test.sh BUILD_DIR: the benchmark runs. scripts/bench.sh --quick
# --instances 1,2 on the already built tree (both modes, N=200 at C=8, with
# one sagad and then two on the same database, its own PostgreSQL servers,
# free ports, state in a temporary directory), then checks that it exited
# 0, printed its summary and wrote JSON with every field the benchmark
# promises (with --syscalls where perf can count syscalls, and with
# --statements), and that with two instances both started sagas. No threshold is asserted: this is a
# benchmark, not a timed test (docs/PERFORMANCE.md).

set -euo pipefail

build=$(cd "${1:?usage: bench_test.sh BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tmp=$(mktemp -d /tmp/saga-bench-test.XXXXXX)
log=$tmp/bench.log
out=$tmp/bench.json
tsv=$tmp/bench.tsv
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "bench_test: $*" >&2
	tail -n 60 "$log" >&2 || true
	exit 1
}

# sagad's system calls are counted where perf can count them (it needs
# the syscall tracepoints); the field is checked then.
sc=()
if command -v perf >/dev/null &&
    perf stat -x, -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then
	sc=(--syscalls)
fi
rc=0
SAGA_BUILD_DIR=$build "$repo/scripts/bench.sh" --quick --instances 1,2 --no-build \
    "${sc[@]}" --statements --json "$out" --tsv "$tsv" >"$log" 2>&1 || rc=$?
((rc == 0)) || fail "bench.sh --quick exited $rc"
[[ -s $out ]] || fail "no JSON written"
for want in "pgbench limit at 8 clients" "== saga benchmark" \
    "sagad memory per saga in flight" "several sagad instances"; do
	grep -qF "$want" "$log" || fail "missing from the output: $want"
done

# The fields, checked with whatever JSON reader the machine has.
check_py='
import json, sys
d = json.load(open(sys.argv[1]))
def need(obj, path):
    for k in path.split("."):
        if not isinstance(obj, dict) or k not in obj:
            sys.exit("missing field " + path)
        obj = obj[k]
    return obj
for p in ("machine.cpu", "machine.cores", "machine.commit", "pgbench",
          "runs", "memory_probe.bytes_per_in_flight_saga"):
    need(d, p)
modes = set()
counts = set()
for r in d["runs"]:
    modes.add(r["mode"])
    n = need(r, "sagad_instances")
    counts.add((r["mode"], n))
    by = need(r, "sagas_started_by_instance")
    if len(by) != n or min(by.values()) <= 0 or sum(by.values()) != r["sagas"]:
        sys.exit("%s, %d instance(s): sagas started by instance %s" % (r["mode"], n, by))
    if len(need(r, "client.coordinators")) != n:
        sys.exit("%s: saga_bench was not given %d coordinators" % (r["mode"], n))
    for p in ("concurrency", "sagas", "done", "pgbench_tps", "sagas_per_s",
              "step_transitions_per_s", "ratio_to_pgbench",
              "latency_ms.p50", "latency_ms.p95", "latency_ms.p99",
              "latency_ms.max", "db.xact_commit_per_saga",
              "db.wal_bytes_per_saga", "db.saga_instance_updates_per_saga",
              "db.saga_instance_hot_fraction", "cpu_ms_per_saga.sagad",
              "cpu_ms_per_saga.postgres", "sagad_memory_kib.peak_hwm",
              "client.latency_ms.p99"):
        need(r, p)
    if r["done"] != r["sagas"]:
        sys.exit("%s: %d of %d sagas done" % (r["mode"], r["done"], r["sagas"]))
    if r["pgbench_tps"] <= 0 or r["sagas_per_s"] <= 0:
        sys.exit("%s: no throughput measured" % r["mode"])
if modes != {"demo", "noop"}:
    sys.exit("modes run: %s" % sorted(modes))
if counts != {(m, n) for m in ("demo", "noop") for n in (1, 2)}:
    sys.exit("runs made: %s" % sorted(counts))
for r in d["runs"]:
    if need(r, "sagad_metrics.commands_per_message") < 1:
        sys.exit("%s: commands per message below 1" % r["mode"])
    # Every answer and request waits some time for the engine thread.
    if need(r, "sagad_metrics.engine_wait_ms_mean") <= 0:
        sys.exit("%s: no engine wait measured" % r["mode"])
    by_db = need(r, "postgres_cpu_ms_per_saga_by_database")
    dbs = {"saga_coordinator"}
    if r["mode"] == "demo":
        dbs |= {"saga_orders", "saga_inventory", "saga_payments", "saga_shipping"}
    if not dbs <= set(by_db) or by_db["saga_coordinator"] <= 0:
        sys.exit("%s: PostgreSQL CPU by database %s" % (r["mode"], by_db))
    sc = r["sagad_syscalls_per_saga"]
    if sys.argv[2] == "1":
        # Every saga takes messages (futex wakes) and a START at least.
        if sc is None or sc.get("all", 0) < 1 or sc.get("futex", 0) <= 0:
            sys.exit("%s: sagad syscalls per saga %s" % (r["mode"], sc))
    elif sc is not None:
        sys.exit("%s: syscalls counted without --syscalls" % r["mode"])
    # Each participant counted on its own; a demo service reaches its
    # database with sendto (libpq), at least once per saga.
    ps = r.get("participants_syscalls_per_saga")
    if sys.argv[2] == "1":
        want = ["orders", "inventory", "payments", "shipping"] if r["mode"] == "demo" else ["noop"]
        if ps is None or sorted(ps) != sorted(want):
            sys.exit("%s: participants syscalls per saga %s" % (r["mode"], ps))
        for p in want:
            if ps[p] is None or ps[p].get("all", 0) < 1:
                sys.exit("%s: %s syscalls per saga %s" % (r["mode"], p, ps[p]))
            if r["mode"] == "demo" and ps[p].get("sendto", 0) < 1:
                sys.exit("demo: %s sendto per saga %s" % (p, ps[p]))
    elif ps is not None:
        sys.exit("%s: participants syscalls counted without --syscalls" % r["mode"])
    # One pass over the processes gives both: the parts add up to the
    # total (each rounded to 4 decimals).
    if abs(sum(by_db.values()) - r["cpu_ms_per_saga"]["postgres"]) > 0.001:
        sys.exit("%s: PostgreSQL CPU by database %s does not add up to the total %s" % (r["mode"], by_db, r["cpu_ms_per_saga"]["postgres"]))
    # --statements: the write of several sagas by sagad is among them,
    # planned in the warm-up, not at every call; without
    # pg_stat_statements, none, and bench.sh said so.
    st = r["pg_statements_per_saga"]
    if st is None:
        if sys.argv[3] != "1":
            sys.exit("%s: no statements, and no warning" % r["mode"])
    else:
        w = [x for x in st if x["database"] == "saga_coordinator" and
             x["query"].startswith("WITH upd AS (UPDATE saga_instance s SET state = u.")]
        if not w or w[0]["calls"] <= 0:
            sys.exit("%s: the write of several sagas is not among %s" % (r["mode"], st))
        if w[0]["plans"] > w[0]["calls"] / 2:
            sys.exit("%s: the write of several sagas planned at every call: %s" % (r["mode"], w))
        if r["mode"] == "demo" and not {"saga_orders", "saga_inventory"} <= {x["database"] for x in st}:
            sys.exit("demo: no statements of the services: %s" % st)
        # The demo prepares its handlers statements on stock, accounts
        # and its inserts: planned in the warm-up, not at every call.
        if r["mode"] == "demo":
            u = [x for x in st if x["database"] == "saga_inventory" and
                 x["query"].startswith("WITH s AS (UPDATE stock SET available = available - $3")]
            if not u:
                sys.exit("demo: the reserve handler statement is not among %s" % st)
            if u[0]["plans"] > u[0]["calls"] / 2:
                sys.exit("demo: the reserve handler planned at every call: %s" % u)
for p in ("orders", "inventory", "payments", "shipping"):
    need([r for r in d["runs"] if r["mode"] == "demo"][0], "cpu_ms_per_saga." + p)
'
if command -v python3 >/dev/null; then
	nostat=0
	! grep -q "no pg_stat_statements; no statement figures" "$log" || nostat=1
	python3 -c "$check_py" "$out" "${#sc[@]}" "$nostat" || fail "JSON check failed"
elif command -v jq >/dev/null; then
	jq -e '.machine.cpu and .memory_probe.bytes_per_in_flight_saga and
	    ([.runs[].mode] | unique) == ["demo", "noop"] and
	    all(.runs[]; .done == .sagas and .sagas_per_s > 0 and
	        .pgbench_tps > 0 and .latency_ms.p99 != null and
	        .db.wal_bytes_per_saga != null and
	        .cpu_ms_per_saga.sagad != null and
	        (.sagas_started_by_instance | length) == .sagad_instances and
	        ([.sagas_started_by_instance[]] | min > 0 and add == .sagas)) and
	    ([.runs[].sagad_instances] | unique) == [1, 2]' "$out" >/dev/null ||
	    fail "JSON check failed"
else
	for f in '"sagas_per_s"' '"step_transitions_per_s"' \
	    '"ratio_to_pgbench"' '"p99"' '"wal_bytes_per_saga"' \
	    '"cpu_ms_per_saga"' '"bytes_per_in_flight_saga"'; do
		grep -q "$f" "$out" || fail "JSON lacks $f"
	done
fi

# --tsv: the figures of every run, one per line (what bench-compare.sh
# reads), as the JSON has them.
[[ $(head -n 1 "$tsv") == $'mode\tlog\tconcurrency\tinstances\trepeat\tfigure\tvalue' ]] ||
	fail "TSV header: $(head -n 1 "$tsv")"
tsv_need=(sagas_per_s p50_ms p99_ms cpu_ms_per_saga cpu_ms.sagad
	cpu_ms.postgres postgres_cpu_ms.saga_coordinator wal_bytes_per_saga
	step_transitions_per_saga transactions_per_saga.saga_coordinator
	sagad.commands_per_message sagad.engine_wait_ms_mean
	saga_instance_hot_fraction)
((${#sc[@]} == 0)) || tsv_need+=(syscalls.sagad.all syscalls.noop.all
	syscalls.orders.sendto)
for m in demo noop; do
	for i in 1 2; do
		for f in "${tsv_need[@]}"; do
			[[ $m == demo && $f == syscalls.noop.* ]] && continue
			[[ $m == noop && $f == syscalls.orders.* ]] && continue
			awk -F'\t' -v m="$m" -v i="$i" -v f="$f" '
			    $1 == m && $2 == "empty log" && $3 == 8 && $4 == i &&
			    $6 == f && $7 ~ /^[0-9.]+$/ { ok = 1 }
			    END { exit !ok }' "$tsv" ||
				fail "TSV: no $f for $m with $i instance(s)"
		done
	done
done
sps=$(awk -F'\t' '$1 == "noop" && $4 == 1 && $6 == "sagas_per_s" { print $7 }' "$tsv")
grep -q '"sagas_per_s": '"$sps"'[,}]' "$out" ||
	fail "TSV sagas/s $sps is not the JSON's"

# bench-compare.sh, end to end: one pair of runs of this build against
# itself (the noop mode, N=200 at C=8), each run labelled in its JSON,
# the figures compared (its arithmetic: bench_compare_test).
cmp=$repo/scripts/bench-compare.sh
rc=0
"$cmp" --old "$build" --new "$build" --old-label a --new-label b \
    --pairs 1 --out "$tmp/cmp" -- --quick --mode noop --no-memprobe \
    >"$tmp/cmp.log" 2>&1 || rc=$?
log=$tmp/cmp.log
((rc == 0)) || fail "bench-compare.sh exited $rc"
grep -qF "noop (empty log) C=8" "$log" || fail "no noop C=8 in the report"
grep -q '"commit": "a"' "$tmp/cmp/run-1-old.json" ||
	fail "run 1 (old) not labelled a"
grep -q '"commit": "b"' "$tmp/cmp/run-2-new.json" ||
	fail "run 2 (new) not labelled b"
awk -F'\t' '$1 == "noop" && $3 == 8 && $5 == "sagas_per_s" &&
    $6 ~ /^[0-9.]+$/ && $7 ~ /^[0-9.]+$/ && $8 == $6 && $9 == $7 &&
    $11 == "-" { ok = 1 } END { exit !ok }' "$tmp/cmp/compare.tsv" ||
	fail "compare.tsv: no sagas_per_s row with one run of each build"

# A run whose requests sagad refused (here at most 4 of 8 may wait: 8
# contexts) and saga_bench sent again is not a closed loop of C sagas:
# said, counted in the TSV, and exit 3.
rc=0
SAGA_BUILD_DIR=$build SAGA_BENCH_SAGAD_ARGS="--api-contexts 8" \
	"$repo/scripts/bench.sh" --no-build --mode noop --concurrency 8:200 \
	--pgbench-seconds 1 --no-memprobe --tsv "$tmp/refused.tsv" \
	>"$tmp/refused.log" 2>&1 || rc=$?
((rc == 3)) || fail "a run with refused requests exited $rc, not 3"
grep -q "request(s) refused by sagad and sent again" "$tmp/refused.log" ||
	fail "the refusals are not said: $(tail -5 "$tmp/refused.log")"
awk -F'\t' '$6 == "client_refused" && $7 > 0 { ok = 1 } END { exit !ok }' \
	"$tmp/refused.tsv" || fail "TSV: no client_refused above 0"

echo "bench_test: bench.sh --quick ${sc[*]} --statements ran both modes with 1 and 2 instances; JSON and TSV complete; bench-compare.sh ran a pair; refusals make exit 3"
