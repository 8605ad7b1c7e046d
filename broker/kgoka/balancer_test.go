package kgoka_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// TestCopartitionBalancerMatchesGoka: the kgo balancer plans exactly what
// goka's sarama strategy plans, and refuses topics of unequal partition
// counts.
func TestCopartitionBalancerMatchesGoka(t *testing.T) {
	bal := kgoka.CopartitionBalancer()
	if bal.ProtocolName() != goka.CopartitioningStrategy.Name() {
		t.Fatalf("protocol %q, goka's %q", bal.ProtocolName(), goka.CopartitioningStrategy.Name())
	}
	topics := []string{"in-a", "in-b", "loop"}
	for _, npar := range []int32{1, 3, 8, 12} {
		for _, nmem := range []int{1, 2, 3, 5, 9} {
			var members []kmsg.JoinGroupResponseMember
			sm := map[string]sarama.ConsumerGroupMemberMetadata{}
			for i := range nmem {
				id := fmt.Sprintf("member-%02d-%d", (i*7)%nmem, i) // not in order
				members = append(members, kmsg.JoinGroupResponseMember{MemberID: id, ProtocolMetadata: bal.JoinGroupMetadata(topics, nil, -1)})
				sm[id] = sarama.ConsumerGroupMemberMetadata{Topics: topics}
			}
			counts := map[string]int32{}
			parts := map[string][]int32{}
			for _, tp := range topics {
				counts[tp] = npar
				for p := range npar {
					parts[tp] = append(parts[tp], p)
				}
			}
			mb, _, err := bal.MemberBalancer(members)
			if err != nil {
				t.Fatal(err)
			}
			into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(counts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string][]int32{}
			for _, a := range into.IntoSyncAssignment() {
				m, err := bal.ParseSyncAssignment(a.MemberAssignment)
				if err != nil {
					t.Fatal(err)
				}
				for tp := range m {
					slices.Sort(m[tp])
				}
				got[a.MemberID] = m
			}
			want, err := goka.CopartitioningStrategy.Plan(sm, parts)
			if err != nil {
				t.Fatal(err)
			}
			for id := range sm {
				w := map[string][]int32(want[id])
				g := got[id]
				for tp := range w {
					slices.Sort(w[tp])
					if len(w[tp]) == 0 {
						delete(w, tp)
					}
				}
				for tp := range g {
					if len(g[tp]) == 0 {
						delete(g, tp)
					}
				}
				if !maps.EqualFunc(g, w, slices.Equal) {
					t.Errorf("%d partitions, %d members, %s: got %v, goka plans %v", npar, nmem, id, g, w)
				}
			}
		}
	}

	members := []kmsg.JoinGroupResponseMember{{MemberID: "m", ProtocolMetadata: bal.JoinGroupMetadata([]string{"a", "b"}, nil, -1)}}
	mb, _, err := bal.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"a": 4, "b": 8}); err == nil {
		t.Error("topics of 4 and 8 partitions balanced without error")
	}
}
