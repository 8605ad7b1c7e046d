package broker

import (
	"hash"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Murmur2 is Kafka's murmur2 hash (the Java client's Utils.murmur2), the hash
// behind Kafka's default partitioner.
func Murmur2(data []byte) uint32 { return murmur2(data) }

// murmur2 is Murmur2 of a key as bytes or, without a copy, as a string.
func murmur2[S ~string | ~[]byte](data S) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Partition returns the partition Kafka's default partitioner gives key:
// murmur2 of the key, masked positive, modulo the partition count.
func Partition(key []byte, partitions int32) int32 {
	return int32(Murmur2(key)&0x7fffffff) % partitions
}

// PartitionOf is Partition of a key held as a string (goka's keys), without
// copying it: the processors check every record's partition with it.
func PartitionOf(key string, partitions int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % partitions
}

// kafkaHash32 adapts Murmur2 to hash.Hash32 for goka and sarama. Its Sum32 is
// already masked positive, so goka's abs(int32(h)) % n and sarama's hash
// partitioner both equal Partition.
type kafkaHash32 struct{ buf []byte }

// NewHasher returns a hash.Hash32 that partitions like Kafka's default.
// Every goka processor, view and emitter of livefeed uses it.
func NewHasher() hash.Hash32 { return &kafkaHash32{} }

func (h *kafkaHash32) Write(p []byte) (int, error) { h.buf = append(h.buf, p...); return len(p), nil }
func (h *kafkaHash32) Sum(b []byte) []byte {
	s := h.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}
func (h *kafkaHash32) Reset()         { h.buf = h.buf[:0] }
func (h *kafkaHash32) Size() int      { return 4 }
func (h *kafkaHash32) BlockSize() int { return 4 }
func (h *kafkaHash32) Sum32() uint32  { return Murmur2(h.buf) & 0x7fffffff }

// Partitioner is the franz-go partitioner equal to Kafka's default for keyed
// records. franz-go's default already is; this makes the choice explicit.
func Partitioner() kgo.Partitioner {
	return kgo.StickyKeyPartitioner(kgo.KafkaHasher(Murmur2))
}
