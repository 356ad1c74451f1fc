#!/usr/bin/env bash
# cluster.sh builds simulated hosts on this machine for the scale-out tests
# (internal/scaleout) and for trying a multi-host deployment by hand:
#
#   eb-h1, eb-h2, eb-h3  10.77.0.1-3   a NATS JetStream node each (cluster "eb",
#                                      client port 4222), and later one bus process each
#   eb-db                10.77.0.10    PostgreSQL 15 (the shared store), port 5432
#   eb-console           10.77.0.20    where the console and the CLI run
#
# Each host is a Linux network namespace with one veth link into a switch namespace
# (eb-sw) that holds the bridge; every address lives inside those namespaces, and the
# root namespace's network is not touched. Netem and link cuts act on a host's eth0.
#
#   cluster.sh up            create namespaces, start NATS x3 and PostgreSQL
#   cluster.sh down          stop everything and delete the namespaces and the data
#   cluster.sh status        show namespaces, links and whether each service answers
#   cluster.sh cut HOST      take HOST's link down (a partition); heal HOST brings it back
#   cluster.sh delay HOST MS add MS ms of netem delay on HOST's link (0 removes it)
#   cluster.sh nats-stop N   kill NATS node N (1-3); nats-start N starts it again
#
# Needs root (ip netns, tc) and Debian's nats-server and postgresql packages; the state
# lives under ${EVENTBUS_CLUSTER_DIR:-/tmp/eventbus-cluster}. NATS_SERVER names another
# nats-server binary (default /usr/sbin/nats-server). Exit status 3 means the machine
# does not allow network namespaces.
set -euo pipefail

DIR=${EVENTBUS_CLUSTER_DIR:-/tmp/eventbus-cluster}
HOSTS=(eb-h1 eb-h2 eb-h3 eb-db eb-console)
declare -A ADDR=([eb-h1]=10.77.0.1 [eb-h2]=10.77.0.2 [eb-h3]=10.77.0.3 [eb-db]=10.77.0.10 [eb-console]=10.77.0.20)
SW=eb-sw
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit "${2:-1}"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# The link of host HOST: "eth0" inside it, "v-HOST" on the switch.
sw_end() { echo "v-${1#eb-}"; }

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root for ip netns and tc (run it with sudo)" 3
  command -v ip >/dev/null || die "ip (iproute2) not found" 3
}

answers() { # answers NS ADDR PORT
  in_ns "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

wait_answers() { # wait_answers NS ADDR PORT WHAT
  for _ in $(seq 1 100); do answers "$1" "$2" "$3" && return 0; sleep 0.1; done
  die "$4 does not answer on $2:$3"
}

nats_start() {
  local n=$1 h=eb-h$1 routes=()
  for m in 1 2 3; do [ "$m" = "$n" ] || routes+=("nats://${ADDR[eb-h$m]}:6222"); done
  mkdir -p "$DIR/nats$n"
  cat >"$DIR/nats$n/server.conf" <<EOF
server_name: n$n
listen: ${ADDR[$h]}:4222
http: ${ADDR[$h]}:8222
jetstream { store_dir: "$DIR/nats$n/js" }
ping_interval: "1s"
ping_max: 3
cluster {
  name: eb
  listen: ${ADDR[$h]}:6222
  routes: [$(IFS=,; echo "${routes[*]}")]
}
EOF
  in_ns "$h" start-stop-daemon --start --background --make-pidfile --pidfile "$DIR/nats$n/pid" \
    --exec "$NATS_SERVER" -- -c "$DIR/nats$n/server.conf" -l "$DIR/nats$n/log"
  wait_answers "$h" "${ADDR[$h]}" 4222 "NATS node $n"
}

nats_stop() {
  local pidfile=$DIR/nats$1/pid
  [ -f "$pidfile" ] || return 0
  kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
}

# js_ready waits until each NATS node named (default all) answers /healthz: its
# JetStream is enabled and current with the meta group and its streams (streams with
# replicas 3 cannot be placed before that; a restarted node has caught up).
js_ready() {
  command -v curl >/dev/null || { log "curl not found: not waiting for JetStream"; return 0; }
  local n nodes=("$@")
  [ ${#nodes[@]} -gt 0 ] || nodes=(1 2 3)
  for n in "${nodes[@]}"; do
    for _ in $(seq 1 600); do
      in_ns eb-h$n curl -sf "http://${ADDR[eb-h$n]}:8222/healthz" >/dev/null 2>&1 && continue 2
      sleep 0.1
    done
    die "JetStream node $n not healthy after 60 s: see $DIR/nats$n/log"
  done
}

pg_start() {
  [ -n "$PGBIN" ] || die "PostgreSQL binaries not found (apt-get install postgresql)" 3
  if [ ! -d "$DIR/pg" ]; then
    install -d -o postgres -g postgres "$DIR/pg" "$DIR/pgsock"
    runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/pg" --auth=trust -U postgres >"$DIR/initdb.log" 2>&1 ||
      die "initdb failed: see $DIR/initdb.log"
    echo "host all all 10.77.0.0/24 trust" >>"$DIR/pg/pg_hba.conf"
  fi
  in_ns eb-db runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pgsock/pg.log" -w \
    -o "-c listen_addresses=${ADDR[eb-db]} -k $DIR/pgsock -c max_connections=300 -c fsync=on" start >/dev/null
  wait_answers eb-db "${ADDR[eb-db]}" 5432 PostgreSQL
}

pg_stop() {
  [ -n "$PGBIN" ] && [ -f "$DIR/pg/postmaster.pid" ] || return 0
  in_ns eb-db runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate stop >/dev/null 2>&1 || true
}

up() {
  need_root
  command -v "$NATS_SERVER" >/dev/null || die "$NATS_SERVER not found (apt-get install nats-server, or set NATS_SERVER)" 3
  if ip netns list | grep -qw "$SW"; then log "already up (cluster.sh down first)"; status; return 0; fi
  ip netns add "$SW" 2>/dev/null || die "cannot create network namespaces here" 3
  mkdir -p "$DIR"; chmod 755 "$DIR"
  in_ns "$SW" ip link add br0 type bridge
  in_ns "$SW" ip link set br0 up
  in_ns "$SW" ip link set lo up
  for h in "${HOSTS[@]}"; do
    ip netns add "$h"
    in_ns "$h" ip link set lo up
    ip link add "$(sw_end "$h")" netns "$SW" type veth peer name eth0 netns "$h"
    in_ns "$SW" ip link set "$(sw_end "$h")" master br0 up
    in_ns "$h" ip addr add "${ADDR[$h]}/24" dev eth0
    in_ns "$h" ip link set eth0 up
  done
  pg_start
  for n in 1 2 3; do nats_start "$n"; done
  js_ready
  log "up: NATS nats://10.77.0.1:4222,nats://10.77.0.2:4222,nats://10.77.0.3:4222; PostgreSQL postgres://postgres@10.77.0.10:5432/postgres"
}

down() {
  need_root
  for n in 1 2 3; do nats_stop "$n"; done
  pg_stop
  # Anything still running inside the namespaces (bus processes of a test) goes too.
  for h in "${HOSTS[@]}"; do
    if ip netns list | grep -qw "$h"; then
      for pid in $(ip netns pids "$h" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$h"
    fi
  done
  ip netns list | grep -qw "$SW" && ip netns del "$SW"
  rm -rf "$DIR"
  log "down"
}

status() {
  for h in "${HOSTS[@]}"; do
    if ! ip netns list | grep -qw "$h"; then echo "$h: absent"; continue; fi
    local state
    state=$(in_ns "$h" cat /sys/class/net/eth0/operstate 2>/dev/null || echo "?")
    local q
    q=$(in_ns "$h" tc qdisc show dev eth0 | grep -o 'netem.*' || true)
    local svc=""
    case $h in
      eb-h*) answers "$h" "${ADDR[$h]}" 4222 && svc="nats up" || svc="nats down" ;;
      eb-db) answers "$h" "${ADDR[$h]}" 5432 && svc="postgres up" || svc="postgres down" ;;
    esac
    echo "$h ${ADDR[$h]} link=$state ${svc} ${q}"
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  cut) need_root; in_ns "${2:?host}" ip link set eth0 down ;;
  heal) need_root; in_ns "${2:?host}" ip link set eth0 up ;;
  delay)
    need_root
    in_ns "${2:?host}" tc qdisc del dev eth0 root 2>/dev/null || true
    if [ "${3:?ms}" != 0 ]; then in_ns "$2" tc qdisc add dev eth0 root netem delay "${3}ms"; fi ;;
  nats-stop) need_root; nats_stop "${2:?node 1-3}" ;;
  nats-start) need_root; nats_start "${2:?node 1-3}"; js_ready "$2" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
