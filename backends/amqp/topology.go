package amqp

import (
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	wamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// declareHook, when set (by tests), is told of every exchange ("exchange") and queue
// ("queue") the backend declares, so tests can delete what they created.
var (
	declareHookMu sync.Mutex
	declareHook   func(kind, name string)
)

func noteDeclared(kind, name string) {
	declareHookMu.Lock()
	h := declareHook
	declareHookMu.Unlock()
	if h != nil && name != "" {
		h(kind, name)
	}
}

// topologyBuilder is Watermill's DefaultTopologyBuilder, reporting what it declares.
type topologyBuilder struct {
	wamqp.DefaultTopologyBuilder
}

func (b *topologyBuilder) ExchangeDeclare(ch *amqp091.Channel, name string, cfg wamqp.Config) error {
	noteDeclared("exchange", name)
	return b.DefaultTopologyBuilder.ExchangeDeclare(ch, name, cfg)
}

func (b *topologyBuilder) BuildTopology(ch *amqp091.Channel, p wamqp.BuildTopologyParams, cfg wamqp.Config, logger watermill.LoggerAdapter) error {
	noteDeclared("queue", p.QueueName)
	noteDeclared("exchange", p.ExchangeName)
	// DefaultTopologyBuilder calls its own ExchangeDeclare, not ours.
	return b.DefaultTopologyBuilder.BuildTopology(ch, p, cfg, logger)
}

// watermillConfig translates c into watermill-amqp's Config for consumer ("" for the
// publisher).
func (c Config) watermillConfig(consumer string) wamqp.Config {
	durableQueue := c.Topology == TopologyDurableQueue
	cfg := wamqp.Config{
		Marshaler: marshaler{}, // DefaultMarshaler's persistent delivery mode, properties
		Exchange: wamqp.ExchangeConfig{
			GenerateName: c.exchangeName,
			Type:         c.ExchangeType,
			Durable:      true,
		},
		Queue: wamqp.QueueConfig{
			GenerateName: func(topic string) string { return c.queueName(topic, consumer) },
			Durable:      true,
		},
		QueueBind: wamqp.QueueBindConfig{GenerateRoutingKey: c.routingKey},
		Publish: wamqp.PublishConfig{
			GenerateRoutingKey: c.routingKey,
			ConfirmDelivery:    *c.PublisherConfirms,
		},
		Consume: wamqp.ConsumeConfig{
			Qos: wamqp.QosConfig{PrefetchCount: c.PrefetchCount},
		},
		TopologyBuilder: &topologyBuilder{},
	}
	if c.PublishChannels > 0 {
		cfg.Publish.ChannelPoolSize = c.PublishChannels
	}
	if durableQueue {
		cfg.Exchange.Type = ""
		cfg.QueueBind.GenerateRoutingKey = func(string) string { return "" }
	}
	return cfg
}
