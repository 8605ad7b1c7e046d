package kgoka

import (
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CopartitionBalancer is goka's copartitioning strategy
// (goka.CopartitioningStrategy) as a kgo group balancer: every member gets
// the same partition numbers of every topic it consumes, in ranges over the
// members sorted by id, and balancing fails if the topics' partition counts
// differ. It speaks goka's protocol name ("copartition") and the standard
// consumer metadata, so kgo and sarama members of one group agree during a
// rolling upgrade.
func CopartitionBalancer() kgo.GroupBalancer { return copartitionBalancer{} }

type copartitionBalancer struct{}

func (copartitionBalancer) ProtocolName() string { return "copartition" }
func (copartitionBalancer) IsCooperative() bool  { return false }

func (copartitionBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, _ int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0 // what sarama's members send and parse
	meta.Topics = interests
	return meta.AppendTo(nil)
}

func (copartitionBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (b copartitionBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance plans the assignment as goka's CopartitioningStrategy.Plan does.
func (copartitionBalancer) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	npar := int32(-1)
	for t, n := range topics {
		if npar < 0 {
			npar = n
		} else if n != npar {
			b.SetError(fmt.Errorf("balancing: topics are not co-partitioned (%s has %d partitions, another %d): goka needs equal partition counts", t, n, npar))
			return nil
		}
	}
	type entry struct {
		m      *kmsg.JoinGroupResponseMember
		topics []string
	}
	var ms []entry
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		ms = append(ms, entry{m, meta.Topics})
	})
	slices.SortFunc(ms, func(a, b entry) int {
		switch {
		case a.m.MemberID < b.m.MemberID:
			return -1
		case a.m.MemberID > b.m.MemberID:
			return 1
		}
		return 0
	})
	plan := b.NewPlan()
	if npar <= 0 {
		return plan
	}
	step := float64(npar) / float64(len(ms))
	for i, e := range ms {
		lo := int32(math.Floor(float64(i)*step + 0.5))
		hi := int32(math.Floor(float64(i+1)*step + 0.5))
		for _, t := range e.topics {
			if _, ok := topics[t]; !ok {
				continue
			}
			for p := lo; p < hi; p++ {
				plan.AddPartition(e.m, t, p)
			}
		}
	}
	return plan
}
