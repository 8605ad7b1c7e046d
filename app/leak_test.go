package app

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Stopping the stack leaves no sarama client running (goka's View does not
// close its clients; serving does).
func TestStopLeavesNoKafkaClients(t *testing.T) {
	_, stop := runEmbedded(t, t.TempDir())
	stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		n := strings.Count(stacks, "github.com/IBM/sarama.")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sarama frames still running after stop:\n%s", n, stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
