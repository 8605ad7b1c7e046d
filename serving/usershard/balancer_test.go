package usershard

import (
	"slices"
	"testing"
)

func members(addrs ...string) []member {
	ms := make([]member, len(addrs))
	for i, a := range addrs {
		ms[i] = member{id: "m-" + a, info: memberInfo{Addr: a, Stored: map[int32]int64{}}}
	}
	return ms
}

func loads(ms []member, to []int) map[string]int {
	out := map[string]int{}
	for _, i := range to {
		if i >= 0 {
			out[ms[i].info.Addr]++
		}
	}
	return out
}

// Partitions are spread ⌊n/m⌋ or ⌈n/m⌉ per replica, whatever the join
// order, and every partition has an owner.
func TestPlanBalances(t *testing.T) {
	for m := 1; m <= 9; m++ {
		addrs := []string{"http://c", "http://a", "http://e", "http://b", "http://d", "http://g", "http://f", "http://i", "http://h"}[:m]
		ms := members(addrs...)
		active, _ := plan(ms, 8, 0)
		if slices.Contains(active, -1) {
			t.Fatalf("%d replicas: unassigned partition: %v", m, active)
		}
		for a, l := range loads(ms, active) {
			if l < 8/m || l > (8+m-1)/m {
				t.Errorf("%d replicas: %s holds %d partitions", m, a, l)
			}
		}
		// The same replicas in another order: the same plan.
		rev := members(addrs...)
		slices.Reverse(rev)
		again, _ := plan(rev, 8, 0)
		for p := range active {
			if ms[active[p]].info.Addr != rev[again[p]].info.Addr {
				t.Fatalf("%d replicas: the plan depends on the join order", m)
			}
		}
	}
}

// A replica keeps the partitions it has the most current copy of, within
// its quota: a restart or a failover resumes instead of replaying.
func TestPlanPrefersCurrentLocalCopies(t *testing.T) {
	ms := members("http://a", "http://b")
	for _, p := range []int32{1, 3, 5, 7} {
		ms[0].info.Stored[p] = 100
		ms[1].info.Stored[p] = 40 // an older copy
	}
	ms[1].info.Stored[0] = 10
	active, _ := plan(ms, 8, 0)
	for _, p := range []int{1, 3, 5, 7} {
		if ms[active[p]].info.Addr != "http://a" {
			t.Errorf("partition %d went to %s, not to the replica with the current copy", p, ms[active[p]].info.Addr)
		}
	}
	if ms[active[0]].info.Addr != "http://b" {
		t.Errorf("partition 0 went to %s, not to the only replica with a copy", ms[active[0]].info.Addr)
	}
}

// A standby is never on the partition's owner, and standbys spread evenly.
func TestPlanStandbys(t *testing.T) {
	for m := 2; m <= 4; m++ {
		ms := members("http://a", "http://b", "http://c", "http://d")[:m]
		active, standby := plan(ms, 8, 1)
		for p := range active {
			if standby[p] < 0 || standby[p] == active[p] {
				t.Fatalf("%d replicas: partition %d active on %d, standby on %d", m, p, active[p], standby[p])
			}
		}
		for a, l := range loads(ms, standby) {
			if l > (8+m-1)/m {
				t.Errorf("%d replicas: %s holds %d standbys", m, a, l)
			}
		}
	}
	// One replica: no standby.
	_, standby := plan(members("http://a"), 8, 1)
	if slices.ContainsFunc(standby, func(i int) bool { return i >= 0 }) {
		t.Errorf("one replica got standbys: %v", standby)
	}
}
