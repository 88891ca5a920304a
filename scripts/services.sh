#!/usr/bin/env bash
# Make sure every local service the test suite needs answers; start the ones that are
# installed but down, install + start PgBouncer (Debian package) in front of PostgreSQL, and
# build + start a streaming hot standby of PostgreSQL on 127.0.0.1:5433 (read-replica tests).
# Idempotent: a service that already answers is left alone. Each one is polled (bounded,
# SERVICES_WAIT seconds, default 60); the script fails naming the first that stays unreachable.
#
#   scripts/services.sh                 # all: postgresql mariadb redis rabbitmq pgbouncer standby
#   scripts/services.sh postgresql      # only some of them
#
# Used by `make test` and `.ci/run`. It never restarts a server that answers.
set -euo pipefail

WAIT=${SERVICES_WAIT:-60}
PGB_DIR=${KIT_PGBOUNCER_DIR:-/var/run/kit-pgbouncer}
PGB_PORT=6432
PGB_MAX_CLIENTS=${KIT_PGBOUNCER_MAX_CLIENTS:-1000}

say() { echo "services: $*"; }

wait_for() {  # wait_for NAME CHECK: poll CHECK once a second, at most WAIT times
  local name=$1 check=$2
  for _ in $(seq 1 "$WAIT"); do
    if bash -c "$check" >/dev/null 2>&1; then say "$name is up"; return 0; fi
    sleep 1
  done
  echo "services: $name did not answer within ${WAIT}s: failing" >&2
  return 1
}

ensure() {  # ensure NAME CHECK START: start NAME when CHECK fails, then wait for CHECK
  local name=$1 check=$2 start=$3
  if bash -c "$check" >/dev/null 2>&1; then say "$name is up"; return 0; fi
  local tool=${start%% *}
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "services: $name is down and not installed here ($tool missing): failing" >&2
    return 1
  fi
  say "$name is down, starting it"
  bash -c "$start" || say "$name: start command failed (still waiting for it)"
  wait_for "$name" "$check"
}

pg_check="pg_isready -q -h 127.0.0.1 -p 5432"
pg_start='pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
mariadb_check="mariadb -h 127.0.0.1 -P 3306 -uroot -e 'select 1'"
mariadb_start="start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
redis_check="redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG"
redis_start='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
rabbitmq_check="timeout 5 bash -c '</dev/tcp/127.0.0.1/5672'"
rabbitmq_start="rabbitmq-server -detached"
# PgBouncer answers on its admin console AND forwards a query to PostgreSQL.
pgb_check="psql -X -h 127.0.0.1 -p $PGB_PORT -U postgres -d pgbouncer -Atc 'SHOW VERSION' \
  && psql -X -h 127.0.0.1 -p $PGB_PORT -U postgres -d postgres -Atc 'SELECT 1'"

write_pgbouncer_config() {
  # transaction pooling, 3 server connections per database, any local client trusted.
  # No ignore_startup_parameters: a startup setting PgBouncer cannot track is refused,
  # which is exactly what the kit's DB_PGBOUNCER check reports as a ConfigurationError.
  install -d -o postgres -g postgres -m 0750 "$PGB_DIR"
  local ini="$PGB_DIR/pgbouncer.ini" tmp
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
; written by scripts/services.sh: the test suite's PgBouncer (do not edit, rewritten each run)
[databases]
* = host=127.0.0.1 port=5432 user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = any
admin_users = postgres
stats_users = postgres
pool_mode = transaction
default_pool_size = 3
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $PGB_MAX_CLIENTS
server_lifetime = 3600
server_idle_timeout = 600
pidfile = $PGB_DIR/pgbouncer.pid
logfile = $PGB_DIR/pgbouncer.log
EOF
  if ! cmp -s "$tmp" "$ini"; then
    install -o postgres -g postgres -m 0640 "$tmp" "$ini"
    PGB_CHANGED=1
  fi
  rm -f "$tmp"
}

pgbouncer_pid() {  # the pid of *our* PgBouncer, if it runs
  local pid
  pid=$(cat "$PGB_DIR/pgbouncer.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_pgbouncer() {
  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    say "pgbouncer is not installed, installing the Debian package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  fi
  PGB_CHANGED=0
  write_pgbouncer_config
  local pid
  if pid=$(pgbouncer_pid); then
    if [ "$PGB_CHANGED" = 1 ]; then say "pgbouncer config changed, reloading"; kill -HUP "$pid"; fi
  elif bash -c "$pgb_check" >/dev/null 2>&1; then
    echo "services: something else answers on 127.0.0.1:$PGB_PORT (not $PGB_DIR's pgbouncer)" >&2
    return 1
  else
    say "pgbouncer is down, starting it"
    # PgBouncer refuses to run as root: run it as the postgres user, daemonised.
    runuser -u postgres -- /usr/sbin/pgbouncer -d "$PGB_DIR/pgbouncer.ini" \
      || say "pgbouncer: start command failed (still waiting for it)"
  fi
  wait_for pgbouncer "$pgb_check"
}

# -- the streaming standby (read replicas) ---------------------------------------------
# A second cluster `standby` of the same PostgreSQL major version, port 5433, made with
# `pg_basebackup -R` from the primary (which is never restarted: only its pg_hba.conf gains a
# `host replication` line, then pg_reload_conf()). No replication slot: a forgotten standby
# never pins WAL on the primary; one that fell too far behind is rebuilt on the next run.
SB_NAME=${KIT_STANDBY_CLUSTER:-standby}
SB_PORT=${KIT_STANDBY_PORT:-5433}
PG_PRIMARY_PORT=5432
psql_primary() { psql -X -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres -d postgres -Atc "$1"; }
# answers, is a hot standby, and streams from the primary
sb_check="psql -X -h 127.0.0.1 -p $SB_PORT -U postgres -d postgres -Atc \
  \"SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')\" | grep -qx t"

pg_major() {  # the major version of the primary cluster on 5432
  pg_lsclusters -h | awk -v port="$PG_PRIMARY_PORT" '$3 == port { print $1; exit }'
}

has_cluster() { pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$1/$SB_NAME"; }

allow_replication() {  # a `host replication` line in the primary's pg_hba.conf, reloaded
  local hba
  hba=$(psql_primary "SHOW hba_file")
  if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+postgres[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    say "adding 'host replication postgres 127.0.0.1/32 trust' to $hba (reload, no restart)"
    printf '%s\n' "host replication postgres 127.0.0.1/32 trust  # scripts/services.sh: standby" >>"$hba"
    psql_primary "SELECT pg_reload_conf()" >/dev/null
  fi
  psql_primary "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND type = 'host'" \
    | grep -qv '^0$' || { echo "services: primary pg_hba has no active replication rule" >&2; return 1; }
}

write_standby_config() {  # the standby's own pg_hba and settings, in /etc/postgresql/V/NAME
  local conf=/etc/postgresql/$1/$SB_NAME
  [ -d "$conf/conf.d" ] || { echo "services: $conf/conf.d missing" >&2; return 1; }
  cat >"$conf/pg_hba.conf" <<EOF
# written by scripts/services.sh: the test suite's streaming standby (rewritten each build)
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
host    all          all   ::1/128       trust
EOF
  cat >"$conf/conf.d/kit-standby.conf" <<EOF
# written by scripts/services.sh
port = $SB_PORT
listen_addresses = '127.0.0.1'
hot_standby = on
EOF
  chown -R postgres:postgres "$conf"
}

build_standby() {  # (re)create the cluster from a fresh base backup of the primary
  local v=$1 datadir
  datadir=/var/lib/postgresql/$v/$SB_NAME
  if has_cluster "$v"; then
    say "standby: dropping the broken cluster $v/$SB_NAME to rebuild it"
    pg_dropcluster --stop "$v" "$SB_NAME"
  fi
  rm -rf "$datadir"
  # a fresh cluster for its configuration in /etc/postgresql/V/NAME; its data is replaced below
  pg_createcluster "$v" "$SB_NAME" --port "$SB_PORT" >/dev/null || return 1
  write_standby_config "$v" || return 1
  say "standby: pg_basebackup of 127.0.0.1:$PG_PRIMARY_PORT into $datadir (no slot)"
  rm -rf "$datadir"
  install -d -o postgres -g postgres -m 0700 "$datadir"
  runuser -u postgres -- pg_basebackup -D "$datadir" -R -X stream --no-slot --checkpoint=fast \
    -h 127.0.0.1 -p "$PG_PRIMARY_PORT" -U postgres || return 1
}

ensure_standby() {
  if bash -c "$sb_check" >/dev/null 2>&1; then say "standby is up"; return 0; fi
  bash -c "$pg_check" >/dev/null 2>&1 || { echo "services: standby needs postgresql up" >&2; return 1; }
  local v saved=$WAIT
  v=$(pg_major)
  [ -n "$v" ] || { echo "services: no PostgreSQL cluster on port $PG_PRIMARY_PORT" >&2; return 1; }
  command -v pg_basebackup >/dev/null 2>&1 || { echo "services: pg_basebackup missing" >&2; return 1; }
  allow_replication || return 1
  if has_cluster "$v"; then
    say "standby is down, starting it"
    pg_ctlcluster --skip-systemctl-redirect "$v" "$SB_NAME" start || true
    WAIT=${KIT_STANDBY_WAIT:-20}
    if wait_for standby "$sb_check" 2>/dev/null; then WAIT=$saved; return 0; fi
    WAIT=$saved
  fi
  build_standby "$v" || return 1
  pg_ctlcluster --skip-systemctl-redirect "$v" "$SB_NAME" start || return 1
  wait_for standby "$sb_check"
}

main() {  # every service is tried; the exit status fails if any stayed down (named above)
  local services=("$@") failed=()
  [ ${#services[@]} -gt 0 ] || services=(postgresql mariadb redis rabbitmq pgbouncer standby)
  for service in "${services[@]}"; do
    case $service in
      postgresql) ensure postgresql "$pg_check" "$pg_start" ;;
      mariadb | mysql) ensure mariadb "$mariadb_check" "$mariadb_start" ;;
      redis) ensure redis "$redis_check" "$redis_start" ;;
      rabbitmq) ensure rabbitmq "$rabbitmq_check" "$rabbitmq_start" ;;
      pgbouncer) ensure_pgbouncer ;;
      standby) ensure_standby ;;
      *) echo "services: unknown service '$service'" >&2; return 2 ;;
    esac || failed+=("$service")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    echo "services: unreachable: ${failed[*]}" >&2
    return 1
  fi
}

main "$@"
