#!/usr/bin/env bash
# Multi-core scaling of `ringcast serve`: one stream, the publisher on one
# shard, players spread by SO_REUSEPORT over 1, 2, 4 and 8 shards pinned to
# CPUs 0..K-1, and `ringcast bench` with 8 threads on CPUs 8..15. Needs a
# machine with 16 CPUs; prints one JSON line per shard count and a table.
#
#   cargo build --release && benches/scaling.sh
#   PLAYERS=4000 DURATION=20 SHARDS="1 2 4 8" benches/scaling.sh
set -u
BIN=${BIN:-target/release/ringcast}
OUTDIR=${OUTDIR:-target/scaling}
PLAYERS=${PLAYERS:-4000}
DURATION=${DURATION:-20}
SHARDS=${SHARDS:-"1 2 4 8"}
LOAD_CPUS=${LOAD_CPUS:-8-15}
# More than 10 000 players needs a bigger connection cap.
CONFIG=$(mktemp)
echo "connections_max = $((PLAYERS + 1000))" > "$CONFIG"
mkdir -p "$OUTDIR"
ulimit -n 65536 2>/dev/null
port=19400
for k in $SHARDS; do
    port=$((port + 1))
    "$BIN" serve --config "$CONFIG" --listen "127.0.0.1:$port" --shards "$k" --cpus "0-$((k - 1))" --admin off \
        2>"$OUTDIR/serve-$k.log" &
    server=$!
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    "$BIN" bench --url "rtmp://127.0.0.1:$port/live/scale" --players "$PLAYERS" \
        --duration-s "$DURATION" --ramp-s 5 --threads 8 --cpus "$LOAD_CPUS" \
        --server-pid "$server" --quiet --json "$OUTDIR/shards-$k.json" > "$OUTDIR/shards-$k.txt"
    kill -TERM "$server"
    wait "$server"
    echo "shards=$k $(tr '\n' ' ' < "$OUTDIR/shards-$k.txt")"
done
python3 - "$OUTDIR" $SHARDS <<'PY'
import json, sys
out, shards = sys.argv[1], sys.argv[2:]
print("| shards | players | got every frame | egress Mbit/s | latency p50 / p99 ms | server CPU s | CPU s per GB |")
print("|---|---|---|---|---|---|---|")
for k in shards:
    r = json.load(open(f"{out}/shards-{k}.json"))
    s = r.get("server") or {}
    print(f"| {k} | {r['players']['total']} | {r['players']['complete']} | {r['egress_mbps']:.0f} | "
          f"{r['latency']['p50_ms']:.1f} / {r['latency']['p99_ms']:.1f} | {s.get('cpu_s', 0):.1f} | "
          f"{(s.get('cpu_s_per_gb') or 0):.3f} |")
PY
