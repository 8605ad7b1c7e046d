package broker

import "github.com/lovoo/goka"

// ProducerBuilder is the producer every processor uses (the same as
// ProcessorOptions sets), for wrappers that need the deployment's producer.
func (c *Config) ProducerBuilder() goka.ProducerBuilder {
	pb, _, _, _ := c.kgokaBuilders()
	return pb
}
