package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-eventbus/eventbus/bus"
)

var _ bus.Pinger = (*Backend)(nil)

// pingCall is a cluster request of Ping in flight.
type pingCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// pingCalls holds each backend's request in flight (*Backend → *pingCall), removed
// when it ends. sarama's requests take no context: a caller that gives up leaves its
// request running, and those that arrive meanwhile share its outcome instead of piling
// up requests on a slow cluster.
var pingCalls sync.Map

// Ping asks the cluster for its brokers and controller (DescribeCluster, or a metadata
// request before Kafka 2.8) on the backend's client, and returns nil when it answered,
// or an error when it failed or ctx ended first. A failed request makes sarama drop
// that broker's connection, so a later Ping dials again. It implements bus.Pinger.
func (b *Backend) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	call := &pingCall{done: make(chan struct{})}
	if v, loaded := pingCalls.LoadOrStore(b, call); loaded {
		call = v.(*pingCall)
	} else {
		go func() {
			_, _, call.err = b.admin.DescribeCluster()
			pingCalls.Delete(b)
			close(call.done)
		}()
	}
	select {
	case <-call.done:
		if call.err != nil {
			return fmt.Errorf("kafka: brokers %v: %w", b.cfg.BrokerHosts, call.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: brokers %v: no answer: %w", b.cfg.BrokerHosts, ctx.Err())
	}
}
