package usershard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// protocol is the group protocol of serving replicas. Replicas of another
// protocol (an incompatible version) cannot join the same group: the
// coordinator refuses a member whose protocols share none with the group's.
const protocol = "livefeed-user-partitions-v1"

// memberInfo is what a replica tells the group leader when it joins (the
// user data of its consumer-protocol metadata).
type memberInfo struct {
	// Addr is the base URL the other replicas and clients reach it at.
	Addr string `json:"addr"`
	// Stored is, per partition it has a local copy of, the next offset
	// to read: the leader gives a partition to the most current copy.
	Stored map[int32]int64 `json:"stored,omitempty"`
}

// assignment is what the leader tells each replica (the user data of its
// consumer-protocol assignment): the whole partition map, so that every
// replica can route any user, and its own share.
type assignment struct {
	// Owners is the base URL of the active replica of every partition.
	Owners []string `json:"owners"`
	// Active are the partitions this replica answers for; Standby the
	// ones it keeps current without answering, to take over in
	// milliseconds when their owner leaves.
	Active  []int32 `json:"active"`
	Standby []int32 `json:"standby,omitempty"`
}

// balancer is a kgo.GroupBalancer (eager) that assigns the user table's
// partitions to serving replicas: each active partition to one replica,
// balanced (⌊n/m⌋ or ⌈n/m⌉ each), preferring the replica with the most
// current local copy so that restarts and failovers resume rather than
// replay; with standbys, a second replica of each partition. Every
// member's assignment carries the full partition→owner map.
type balancer struct {
	topic    string
	standbys int
	// join returns this replica's metadata; sync receives its
	// assignment (on the group's goroutine, before OnPartitionsAssigned).
	join func() memberInfo
	sync func(assignment)
}

func (b *balancer) ProtocolName() string { return protocol }
func (b *balancer) IsCooperative() bool  { return false }

func (b *balancer) JoinGroupMetadata(interests []string, _ map[string][]int32, _ int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = interests
	meta.UserData, _ = json.Marshal(b.join()) // a map and a string: cannot fail
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(raw []byte) (map[string][]int32, error) {
	var ka kmsg.ConsumerMemberAssignment
	if err := ka.ReadFrom(raw); err != nil {
		return nil, fmt.Errorf("reading the group assignment: %w", err)
	}
	var a assignment
	if len(ka.UserData) > 0 {
		if err := json.Unmarshal(ka.UserData, &a); err != nil {
			return nil, fmt.Errorf("reading the partition map of the group assignment: %w", err)
		}
	}
	b.sync(a)
	out := map[string][]int32{}
	for _, t := range ka.Topics {
		out[t.Topic] = t.Partitions
	}
	return out, nil
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// member is one replica as the leader sees it.
type member struct {
	id   string
	info memberInfo
}

// Balance is the leader's plan (kgo.ConsumerBalancerBalance).
func (b *balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	var ms []member
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		var info memberInfo
		if json.Unmarshal(meta.UserData, &info) != nil || info.Addr == "" {
			return // not a replica of this version: it gets nothing
		}
		ms = append(ms, member{id: m.MemberID, info: info})
	})
	n := topics[b.topic]
	active, standby := plan(ms, n, b.standbys)
	out := &syncPlan{topic: b.topic, byMember: map[string]assignment{}}
	owners := make([]string, n)
	for p, i := range active {
		owners[p] = ms[i].info.Addr
	}
	for i, m := range ms {
		a := assignment{Owners: owners}
		for p := range n {
			if active[p] == i {
				a.Active = append(a.Active, p)
			}
			if standby[p] == i {
				a.Standby = append(a.Standby, p)
			}
		}
		out.byMember[m.id] = a
	}
	// Members that are not replicas of this version still need an
	// (empty) assignment.
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, _ *kmsg.ConsumerMemberMetadata) {
		if _, ok := out.byMember[m.MemberID]; !ok {
			out.byMember[m.MemberID] = assignment{Owners: owners}
		}
	})
	return out
}

// plan assigns n partitions to ms: active[p] and standby[p] are indexes in
// ms (−1: none). ms is sorted in place by address, then member id, so the
// plan depends on the replicas, not on the order they joined in.
func plan(ms []member, n int32, standbys int) (active, standby []int) {
	slices.SortFunc(ms, func(a, b member) int {
		return cmp.Or(cmp.Compare(a.info.Addr, b.info.Addr), cmp.Compare(a.id, b.id))
	})
	active, standby = make([]int, n), make([]int, n)
	for p := range active {
		active[p], standby[p] = -1, -1
	}
	m := len(ms)
	if m == 0 {
		return active, standby
	}
	quota := func(i int) int {
		q := int(n) / m
		if i < int(n)%m {
			q++
		}
		return q
	}
	fill(ms, active, nil, quota)
	if standbys > 0 && m > 1 {
		// Standbys are spread evenly too, never on the active replica.
		fill(ms, standby, active, func(int) int { return (int(n) + m - 1) / m })
	}
	return active, standby
}

// fill gives every partition of to a member under its quota that is not
// not[p]: first the member with the most current local copy, then the
// least loaded.
func fill(ms []member, to, not []int, quota func(int) int) {
	load := make([]int, len(ms))
	free := func(i, p int) bool { return load[i] < quota(i) && (not == nil || not[p] != i) }
	for p := range to {
		best, bestOff := -1, int64(-1)
		for i, m := range ms {
			if off, ok := m.info.Stored[int32(p)]; ok && off > bestOff && free(i, p) {
				best, bestOff = i, off
			}
		}
		if best >= 0 {
			to[p] = best
			load[best]++
		}
	}
	for p := range to {
		if to[p] >= 0 {
			continue
		}
		best := -1
		for i := range ms {
			if free(i, p) && (best < 0 || load[i] < load[best]) {
				best = i
			}
		}
		if best < 0 {
			// Quotas are full (standbys, few members): least loaded
			// other member.
			for i := range ms {
				if (not == nil || not[p] != i) && (best < 0 || load[i] < load[best]) {
					best = i
				}
			}
		}
		if best >= 0 {
			to[p] = best
			load[best]++
		}
	}
}

// syncPlan is the leader's answer: each member's topic partitions (active
// and standby) with its assignment as user data.
type syncPlan struct {
	topic    string
	byMember map[string]assignment
}

func (sp *syncPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(sp.byMember))
	for id, a := range sp.byMember {
		var ka kmsg.ConsumerMemberAssignment
		if parts := slices.Sorted(slices.Values(slices.Concat(a.Active, a.Standby))); len(parts) > 0 {
			t := kmsg.NewConsumerMemberAssignmentTopic()
			t.Topic, t.Partitions = sp.topic, parts
			ka.Topics = append(ka.Topics, t)
		}
		ka.UserData, _ = json.Marshal(a) // slices and strings: cannot fail
		s := kmsg.NewSyncGroupRequestGroupAssignment()
		s.MemberID, s.MemberAssignment = id, ka.AppendTo(nil)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b kmsg.SyncGroupRequestGroupAssignment) int { return cmp.Compare(a.MemberID, b.MemberID) })
	return out
}
