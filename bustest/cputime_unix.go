//go:build unix

package bustest

import "syscall"

// cpuSeconds is the CPU time (user + system) this process used so far: per event it
// varies less than wall time on a machine shared with other work. A broker in another
// process (a NATS or RabbitMQ server) is not in it; kfake and the embedded NATS server
// are.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
