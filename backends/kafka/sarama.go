package kafka

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/go-eventbus/eventbus/internal/tlsfiles"
)

// saramaConfig translates c (defaults applied, validated) into a sarama config shared
// by the publisher, the subscribers and the admin client.
func (c Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	v, err := sarama.ParseKafkaVersion(c.KafkaVersion)
	if err != nil {
		return nil, fmt.Errorf("backend_settings.kafka_version: %w", err)
	}
	sc.Version = v

	sc.Net.DialTimeout = c.ConnectTimeout
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	// Topics are created by the backend (auto_create_topics) or by the operator, never
	// as a side effect of a metadata request.
	sc.Metadata.AllowAutoTopicCreation = false

	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	// A few quick retries, so a publish fails within seconds when the brokers are gone
	// and the caller decides what to do.
	sc.Producer.Retry.Max = 3
	sc.Producer.Retry.Backoff = 250 * time.Millisecond

	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if c.InitialOffset == OffsetNewest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout

	sc.Admin.Timeout = c.ConnectTimeout

	if c.TLS.Enabled {
		tc, err := c.TLS.load()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if c.SASL.Mechanism != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASL.Mechanism)
		switch c.SASL.Mechanism {
		case sarama.SASLTypeSCRAMSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
		case sarama.SASLTypeSCRAMSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("backend_settings: sarama rejects the derived config: %w", err)
	}
	return sc, nil
}

// load reads the TLS files.
func (t TLSConfig) load() (*tls.Config, error) {
	return tlsfiles.Load("backend_settings.tls", tlsfiles.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify})
}

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// Begin starts a SCRAM conversation for user.
func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := s.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

// Step answers the server's challenge.
func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

// Done reports whether the conversation is over.
func (s *scramClient) Done() bool { return s.conv.Done() }
