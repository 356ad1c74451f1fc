package bustest

import (
	"os"
	"strconv"
	"strings"
)

// BrokerPIDsEnv names the environment variable that lists, comma-separated, the process
// ids of a broker running on the same machine (a NATS or RabbitMQ server):
// BenchmarkBackend then also reports their CPU per event (`_broker-cpu-µs/event`), so
// that a run's whole cost per event is known, not only this process's.
const BrokerPIDsEnv = "EVENTBUS_BENCH_BROKER_PIDS"

// clockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTicks = 100

// brokerCPUSeconds is the CPU time (user + system) used so far by the processes listed
// in BrokerPIDsEnv, read from /proc; 0 when none is listed or /proc cannot be read.
func brokerCPUSeconds() float64 {
	var total float64
	for _, f := range strings.Split(os.Getenv(BrokerPIDsEnv), ",") {
		pid := strings.TrimSpace(f)
		if pid == "" {
			continue
		}
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name (in parentheses, which may hold spaces):
		// state is field 3, utime 14 and stime 15.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, err1 := strconv.ParseFloat(fields[11], 64)
		stime, err2 := strconv.ParseFloat(fields[12], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		total += (utime + stime) / clockTicks
	}
	return total
}
