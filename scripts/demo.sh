#!/usr/bin/env bash
# Runs a full seed end to end against the bundled fake GitHub (no network, no real
# tokens): builds seedq and the fake, serves a 200-PR repository whose tokens get 400
# REST requests and 2 GraphQL points per 5-second window, seeds it with three tokens
# through both APIs (`--api auto`, the default), and queries the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export SQLX_OFFLINE=true

cargo build --release --quiet --bin seedq --example fake_github
bin=target/release/seedq
work=$(mktemp -d)
trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

target/release/examples/fake_github --port 0 --repo acme/widgets:200 \
    --limit 400 --graphql-limit 2 --window-secs 5 --latency-ms 5 >"$work/fake.out" &
fake_pid=$!
for _ in $(seq 100); do
    grep -q listening "$work/fake.out" 2>/dev/null && break
    sleep 0.1
done
url=$(grep -o 'http://[0-9.:]*' "$work/fake.out" | head -1)
echo "fake GitHub at $url"

export SEEDQ_DB="$work/demo.db" GITHUB_API_URL="$url" SEEDQ_RATE_WINDOW_SECS=5
export SEEDQ_REST_PER_MINUTE=0 SEEDQ_GRAPHQL_PER_MINUTE=0
export GITHUB_SEEDING_TOKENS=ghp_demoaaaaaaaaaaaaaaaaaaaaaaaa1111,ghp_demobbbbbbbbbbbbbbbbbbbbbbbb2222,ghp_democcccccccccccccccccccccccc3333

$bin enqueue acme/widgets
time $bin work --workers 6
$bin status

python3 - "$SEEDQ_DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for view in ["pull_requests", "pr_commits", "pr_reviews", "pr_files", "pr_check_runs"]:
    print(f"{view:15} {db.execute(f'select count(*) from {view}').fetchone()[0]:>7} rows")
print()
for row in db.execute("select number, substr(title, 1, 40), additions, deletions from pull_requests order by number limit 5"):
    print(row)
PY
