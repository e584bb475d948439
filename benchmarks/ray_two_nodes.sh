#!/usr/bin/env bash
# A Ray cluster of two nodes on this machine (one CPU each), a suite run on it with --address, and a check that
#   (1) cells ran on both nodes (results.json's run.workers, one entry per worker process) and
#   (2) results.csv equals a serial run's, timing columns aside.
#   bash benchmarks/ray_two_nodes.sh [SUITE]      # default: benchmarks/executors_train.toml; needs robustinv[ray]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
SUITE=${1:-benchmarks/executors_train.toml}
WORK=$(mktemp -d)
PORT=${RAY_PORT:-6390}
# Ray 2.5x+ authenticates clients with a token (~/.ray/auth_token, made by `ray start --head`): every process asks for it.
export ROBUSTINV_CACHE="$WORK/cache" RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token
cleanup() { "$BIN/ray" stop --force >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN/ray" start --head --port "$PORT" --num-cpus 1 --include-dashboard false --disable-usage-stats >/dev/null
"$BIN/ray" start --address "127.0.0.1:$PORT" --num-cpus 1 >/dev/null
"$BIN/python" - "$PORT" <<'PY'
import sys, ray
ray.init(address=f"127.0.0.1:{sys.argv[1]}", log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]
print(f"cluster: {len(nodes)} nodes, " + ", ".join(f"{n['NodeID'][:12]} ({n['Resources'].get('CPU', 0):g} CPU)" for n in nodes))
PY

start=$(date +%s.%N)
"$BIN/robustinv" --quiet run "$SUITE" --address "127.0.0.1:$PORT" --out "$WORK/cluster" --store "$WORK/cluster.db" >/dev/null
echo "cluster run: $(echo "$(date +%s.%N) - $start" | bc) s"
ROBUSTINV_CACHE="$WORK/serial-cache" "$BIN/robustinv" --quiet run "$SUITE" --out "$WORK/serial" --store "$WORK/serial.db" >/dev/null

"$BIN/python" - "$WORK" <<'PY'
import json, sys
from pathlib import Path
import pandas as pd
from robustinv.records import TIMING_COLUMNS

work = Path(sys.argv[1])
run = json.loads((work / "cluster" / "results.json").read_text())["run"]
nodes = {}
for worker, cells in run["workers"].items():
    node = worker.split()[2]
    nodes.setdefault(node, []).extend(cells)
print(f"executor {run['executor']}: {sum(map(len, nodes.values()))} cells on {len(nodes)} nodes")
for node, cells in nodes.items():
    print(f"  node {node}: {len(cells)} cells, e.g. {cells[0]!r}")
frames = [pd.read_csv(work / name / "results.csv").drop(columns=sorted(TIMING_COLUMNS)) for name in ("cluster", "serial")]
same = frames[0].equals(frames[1])
print(f"results.csv identical to the serial run (timing columns aside): {'yes' if same else 'NO'}")
sys.exit(0 if same and len(nodes) == 2 else 1)
PY
