// Package scaleout holds the scale-out tests: three bus processes on simulated hosts
// (Linux network namespaces built by scripts/cluster.sh) sharing a 3-node NATS
// JetStream cluster and one PostgreSQL store, under link cuts, a lost broker node,
// store latency and control commands from a fourth host. The tests need root; see
// docs/scale-out.md for what they show and their measured results.
package scaleout
