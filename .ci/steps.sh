#!/usr/bin/env bash
# CI steps shared by .ci/run (this machine) and .github/workflows/ci.yml (GitHub runners).
# Usage: .ci/steps.sh <step>...   steps: services tools install check
# The tests are not a step: .ci/run and ci.yml both run the README's `npm test` themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[ci] %s\n' "$*"; }

# True when something accepts TCP connections on 127.0.0.1:<port>.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local port=$1 name=$2
  for _ in $(seq 1 30); do listening "$port" && return 0; sleep 1; done
  log "$name did not start listening on 127.0.0.1:$port"
  return 1
}

# PostgreSQL 15 and Redis 7 on their standard ports. On GitHub they are service containers and already up.
step_services() {
  if ! listening 5432; then
    log 'starting PostgreSQL'
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    wait_for 5432 PostgreSQL
  fi
  if ! listening 6379; then
    log 'starting Redis'
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    wait_for 6379 Redis
  fi
}

# moto_server and cfn-lint from PyPI; Chromium for the browser tests from Debian when it is missing.
step_tools() {
  if ! command -v moto_server >/dev/null 2>&1 || ! command -v cfn-lint >/dev/null 2>&1; then
    log 'installing moto[server] and cfn-lint'
    python3 -m pip install --quiet 'moto[server]>=5,<6' cfn-lint
  fi
  if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    log 'installing chromium'
    local sudo=''
    [ "$(id -u)" -eq 0 ] || sudo='sudo'
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
}

step_install() {
  log "node $(node --version), npm $(npm --version)"
  npm ci --no-audit --no-fund
}

step_check() {
  npm run typecheck
  npm run lint
}

[ "$#" -gt 0 ] || { echo 'usage: .ci/steps.sh <services|tools|install|check>...' >&2; exit 2; }
for step in "$@"; do
  case "$step" in
    services | tools | install | check) "step_$step" ;;
    *) echo "unknown CI step '$step' (services, tools, install, check)" >&2; exit 2 ;;
  esac
done
