package kgoka_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// A group coordinator that moves again and again under load, on kfake: what
// a broker crash does to the groups it coordinates (their coordinator is
// gone, then COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR while another
// broker loads them). A fenced processor (the production setup) forwards
// every input to out and counts it in its table. Each outage fails every
// request for the group (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
// OffsetFetch, OffsetCommit) for a random 0.2–4 s — long enough for kgo's
// heartbeat, join, sync or offset fetch to fail at whatever step it is in —
// then the coordinator moves (kfake rehashes it) and answers again. After
// the outages every input must be forwarded: the group rejoined, whatever
// step its join failed at.
func TestCoordinatorMovesUnderLoad(t *testing.T) {
	if os.Getenv("LIVEFEED_TEST_BROKERS") != "" {
		t.Skip("kfake only (its faults move the coordinator); TestBrokerFault is the real-Kafka test")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	in, out, group := goka.Stream(name(t, "in")), goka.Stream(name(t, "out")), goka.Group(name(t, "group"))
	createTopics(t, brokers, 4, false, string(in), string(out))
	createTopics(t, brokers, 4, true, string(goka.GroupTable(group)))

	// Kafka's default session. kfake keeps expiring a member while its
	// coordinator is unreachable (Kafka's next coordinator restarts the
	// timers when it loads the group), so the outages below are kept well
	// short of it: the member survives them at the coordinator while kgo's
	// own requests fail. A member that does expire is fenced, by design.
	k := kgoka.New(kgoka.Options{SessionTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond, LeaseMargin: time.Second})
	graph := goka.DefineGroup(group,
		goka.Input(in, new(codec.String), func(ctx goka.Context, msg any) {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			ctx.Emit(out, ctx.Key(), msg)
		}),
		goka.Output(out, new(codec.String)),
		goka.Persist(new(codec.Int64)),
	)
	f := k.Fence(nil)
	p, err := goka.NewProcessor(brokers, graph, append(processorOptions(k, storage.MemoryBuilder()), f.ProcessorOptions()...)...)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stopProc := context.WithCancel(context.Background())
	procDone := make(chan error, 1)
	go func() { procDone <- p.Run(pctx) }()
	defer func() {
		stopProc()
		select {
		case <-procDone:
		case <-time.After(30 * time.Second):
			t.Error("the processor did not stop")
		}
	}()

	inputs := feed(t, brokers, in, 5*time.Millisecond)

	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(out)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	var (
		seenMu sync.Mutex
		seen   = map[string]bool{}
	)
	consumed := make(chan struct{})
	cctx, stopCons := context.WithCancel(context.Background())
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			seenMu.Lock()
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
			seenMu.Unlock()
		}
	}()
	defer func() { stopCons(); <-consumed }()
	forwarded := func() int {
		seenMu.Lock()
		defer seenMu.Unlock()
		return len(seen)
	}

	eventually(t, 30*time.Second, "records forwarded before the outages", func() (bool, string) {
		return forwarded() >= 100, fmt.Sprintf("%d forwarded of %d sent", forwarded(), inputs.sent.Load())
	})

	// Unreachable: the coordinator's connections close on every group
	// request (kgo redials and retries, as against a dead broker).
	var unreachable atomic.Bool
	groupKeys := []kmsg.Key{kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetFetch, kmsg.OffsetCommit, kmsg.LeaveGroup}
	for _, key := range groupKeys {
		c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if unreachable.Load() {
				return nil, errors.New("coordinator unreachable"), true
			}
			return nil, nil, false
		})
	}

	// A crashed node: every request to it closes the connection. (Not its
	// ApiVersions: kgo takes a connection closed during that handshake for
	// a TLS mismatch and fails the records, where a dead broker's refused
	// connections are retried.)
	var crashed atomic.Int32
	crashed.Store(-1)
	c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n := crashed.Load(); n >= 0 && c.CurrentNode() == n && req.Key() != int16(kmsg.ApiVersions) {
			return nil, errors.New("node crashed"), true
		}
		return nil, nil, false
	})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	const outages = 12
	for i := range outages {
		// Unreachable first (the crashed broker), then errors while
		// another broker takes the group over.
		switch rng.IntN(3) {
		case 0:
			unreachable.Store(true)
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
			unreachable.Store(false)
		case 1: // the coordinator's node crashes: it answers nothing at all
			node := c.CoordinatorFor(string(group))
			crashed.Store(node)
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
			// The controller fences it: its partitions get new leaders.
			for _, tp := range []goka.Stream{in, out, goka.Stream(goka.GroupTable(group))} {
				for p := range int32(4) {
					if c.LeaderFor(string(tp), p) == node {
						if err := c.MoveTopicPartition(string(tp), p, (node+1+rng.Int32N(2))%3); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			c.RehashCoordinators()
			if c.CoordinatorFor(string(group)) == node {
				c.RehashCoordinators()
			}
			// Back after a while, as a follower.
			back := time.AfterFunc(time.Duration(rng.Int64N(int64(5*time.Second))), func() { crashed.CompareAndSwap(node, -1) })
			defer back.Stop()
		}
		errs := []*kerr.Error{kerr.CoordinatorNotAvailable, kerr.NotCoordinator, kerr.CoordinatorLoadInProgress}
		h := c.Fault(kfake.Fault{Keys: groupKeys, Group: string(group), TopLevel: true, Count: -1, Err: errs[rng.IntN(len(errs))]})
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(2800*time.Millisecond))))
		c.RehashCoordinators()
		h.Remove()
		// Up again for a while: time for the member to rejoin (or not).
		before := forwarded()
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
		t.Logf("outage %d of %d: %d forwarded, %d since the outage ended", i+1, outages, forwarded(), forwarded()-before)
	}

	time.Sleep(time.Second)
	want := inputs.Stop() // what was sent must all arrive
	deadline := time.Now().Add(45 * time.Second)
	for int64(forwarded()) < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := forwarded(); int64(got) < want {
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d of %d inputs forwarded 45 s after the last outage: the group did not rejoin\n%s", got, want, buf)
	}
}
