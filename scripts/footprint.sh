#!/usr/bin/env bash
# Footprint of eventbus programs: binary size (plain and stripped) and the heavy modules
# each links. docs/development.md keeps the numbers; re-run on a quiet machine to refresh.
#
#	bash scripts/footprint.sh [package ...]   # default: the quickstart, the examples, the CLI
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	pkgs=(./examples/quickstart ./examples/memory ./internal/footprint/testdata/natsclient ./examples/nats ./examples/kafka ./examples/amqp ./examples/sql ./examples/outbox ./cmd/eventbus)
fi
heavy='jackc/pgx|go-sql-driver/mysql|lib/pq|IBM/sarama|twmb/franz-go|rabbitmq/amqp091|nats-io/nats.go|nats-io/nats-server|modernc.org/sqlite|watermill-sql'

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-40s %10s %10s  %s\n' package plain '-s -w' 'heavy modules linked'
for p in "${pkgs[@]}"; do
	go build -o "$out/plain" "$p"
	go build -trimpath -ldflags='-s -w' -o "$out/stripped" "$p"
	mods=$(go list -deps -f '{{if .Module}}{{.Module.Path}}{{end}}' "$p" | sort -u | grep -E "$heavy" | sed 's|^github.com/||; s|^modernc.org/||' | paste -sd' ' || true)
	printf '%-40s %9.1fM %9.1fM  %s\n' "${p#./}" \
		"$(echo "$(stat -c %s "$out/plain") / 1048576" | bc -l)" \
		"$(echo "$(stat -c %s "$out/stripped") / 1048576" | bc -l)" "${mods:--}"
done
