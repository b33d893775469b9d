#!/usr/bin/env bash
# Install everything the test suite needs and run all of it, on SQLite and on a real PostgreSQL server.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || ! command -v git >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo_=""; else sudo_="sudo"; fi
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql git >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install -q -e '.[test]'

pg_dir=$(mktemp -d /tmp/gitops-health-pg.XXXXXX)
pg_port=${GITOPS_HEALTH_TEST_PG_PORT:-55433}
cleanup() { .ci/postgres.sh stop "$pg_dir" "$pg_port"; rm -rf "$pg_dir"; }
trap cleanup EXIT
export GITOPS_HEALTH_TEST_POSTGRES_URL=$(.ci/postgres.sh start "$pg_dir" "$pg_port")
export GITOPS_HEALTH_REQUIRE_POSTGRES=1
export HF_HUB_OFFLINE=1

.venv/bin/python -m pytest -q "$@"
