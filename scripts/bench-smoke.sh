#!/bin/sh
# CI smoke test of the benchmark: `bench --quick` must finish and produce sane output (a table,
# JSON with records whose runs all ended, an SVG chart). It asserts no speed: figures on a
# shared CI machine mean little; the committed full run is in Benchmarks/results/.
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift build -c release --product bench
swift build -c release --product worker
.build/release/bench --quick --json "$out/results.json" --svg "$out/chart.svg" >"$out/table.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
data = json.load(open(f"{out}/results.json"))
records = data["records"]
ran = [r for r in records if r.get("tasks_per_second")]
assert records, "no records"
assert len(ran) >= len(records) // 2, f"only {len(ran)} of {len(records)} runs measured"
for r in ran:
    assert r["succeeded"] + r["failed"] == r["tasks"], f"a run lost tasks: {r}"
    assert r["tasks_per_second"] > 0 and r["p50_ms"] >= 0, f"insane figures: {r}"
modes = {r["mode"] for r in ran}
assert {"threads", "ipc", "tcp"} <= modes, f"modes measured: {modes}"
table = open(f"{out}/table.txt").read()
assert "tasks/s" in table and len(table.splitlines()) >= len(ran), "table missing"
svg = open(f"{out}/chart.svg").read()
assert svg.startswith("<svg") or "<svg" in svg[:200], "no SVG"
print(f"bench smoke: {len(ran)} runs over {sorted(modes)}, table and chart written")
PY
