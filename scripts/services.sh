#!/usr/bin/env bash
# Starts (and on a fresh Debian machine installs) the services the tests talk to:
# PostgreSQL 5432, MariaDB 3306, RabbitMQ 5672, NATS with JetStream 4222, and Chromium
# for the console's browser tests. Safe to run again: running services are left alone.
# Kafka needs nothing: its tests run an in-process Kafka (kfake).
set -u

log() { printf 'services: %s\n' "$*"; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done
  log "WARNING: $2 is still not listening on $1"; return 1
}
apt_updated=0
install() {
  command -v apt-get >/dev/null || { log "WARNING: cannot install $* (no apt-get)"; return 1; }
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || { log "WARNING: apt-get install $* failed"; return 1; }
}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# PostgreSQL: trust on 127.0.0.1, database "test".
if ! up 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing PostgreSQL"; install postgresql
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      as_root sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(host\s+all\s+all\s+::1\/128\s+)\S+/\1trust/' "$hba"
    done
  fi
  log "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start 2>/dev/null
  wait_port 5432 PostgreSQL && { su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" 2>/dev/null | grep -q 1 || su postgres -c "createdb test" 2>/dev/null; }
fi

# MariaDB: root without password, database "test".
if ! up 3306; then
  if [ ! -x /usr/sbin/mariadbd ]; then log "installing MariaDB"; install mariadb-server; fi
  log "starting MariaDB"
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >/dev/null 2>&1
  wait_port 3306 MariaDB && mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test; ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;" >/dev/null 2>&1
fi

# RabbitMQ: guest/guest on localhost.
if ! up 5672; then
  if ! command -v rabbitmq-server >/dev/null; then log "installing RabbitMQ"; install rabbitmq-server; fi
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached >/dev/null 2>&1
  wait_port 5672 RabbitMQ
fi

# NATS with JetStream.
if ! up 4222; then
  if [ ! -x /usr/sbin/nats-server ]; then log "installing nats-server"; install nats-server; fi
  log "starting NATS"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 NATS
fi

# Chromium for the console's browser tests.
if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium"; install chromium
fi

for p in 5432:PostgreSQL 3306:MariaDB 5672:RabbitMQ 4222:NATS; do
  up "${p%%:*}" && log "${p#*:} up on ${p%%:*}" || log "WARNING: ${p#*:} down on ${p%%:*}"
done
command -v chromium >/dev/null && log "Chromium $(chromium --version 2>/dev/null | awk '{print $2}')" || log "WARNING: no Chromium"
exit 0
