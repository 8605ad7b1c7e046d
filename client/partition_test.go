package client

import (
	"fmt"
	"testing"

	"github.com/livefeed/livefeed/broker"
)

// The client routes a user to the partition the processors write it to.
func TestPartitionIsKafkas(t *testing.T) {
	for i := range 5000 {
		for _, n := range []int32{1, 3, 8, 64} {
			id := fmt.Sprintf("user-%d-%s", i, string(rune('a'+i%26)))
			if got, want := partition(id[:len(id)-i%4], n), broker.PartitionOf(id[:len(id)-i%4], n); got != want {
				t.Fatalf("partition(%q, %d) = %d, broker says %d", id, n, got, want)
			}
		}
	}
}
