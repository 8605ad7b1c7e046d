package broker

import (
	"github.com/lovoo/goka"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// ProducerBuilder is the producer every processor uses (the same as
// ProcessorOptions sets), for wrappers that need the deployment's producer.
func (c *Config) ProducerBuilder() goka.ProducerBuilder {
	pb, _, _, _ := c.kgokaBuilders()
	return pb
}

// Fence is a new membership fence for one processor (kgoka.Fence): build the
// processor with its ProcessorOptions after ProcessorOptions' own, and its
// write-behind state with its Producer, so that a replica that lost its
// partitions while stopped writes and commits nothing when it wakes. m
// counts the fencing (nil: unregistered).
func (c *Config) Fence(m *kgoka.Metrics) *kgoka.Fence { return c.Kgoka().Fence(m) }
