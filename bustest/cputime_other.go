//go:build !unix

package bustest

// cpuSeconds is not measured here: the benchmarks report 0 CPU per event.
func cpuSeconds() float64 { return 0 }
