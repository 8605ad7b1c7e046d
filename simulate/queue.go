package simulate

// kind is what a timer does when it fires.
type kind uint8

const (
	kSchedule     kind = iota // pick a free seller and announce a scheduled stream
	kGoLive                   // s: scheduled → live
	kUpdate                   // s: metadata change of a live stream
	kAuctionStart             // s: start the next auction
	kAuctionClose             // s: close the running auction (sold/unsold)
	kEnd                      // s: live → ended
	kSession                  // u: the session's next heartbeat or its end (the user's only timer)
	kLeaveEmit                // u, s: write the leave of a viewer detached by the end of s
)

// item is a timer. Items are ordered by (at, seq) so that equal times fire in
// the order they were scheduled, which keeps the output deterministic.
type item struct {
	at  int64 // unix nanoseconds
	seq uint64
	s   *stream
	u   int32
	k   kind
}

func (a *item) before(b *item) bool {
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

// queue is a binary min-heap of timers. The kSession timer of a user is
// tracked through user.hidx so that it can be removed when the session ends
// early, which keeps the heap from filling with stale timers.
type queue struct {
	items []item
	users []user
	seq   uint64
}

func (q *queue) len() int { return len(q.items) }

func (q *queue) top() *item { return &q.items[0] }

func (q *queue) push(it item) {
	q.seq++
	it.seq = q.seq
	q.items = append(q.items, it)
	q.up(len(q.items) - 1)
}

func (q *queue) pop() item {
	it := q.items[0]
	q.removeAt(0)
	return it
}

// removeAt deletes the item at heap index i.
func (q *queue) removeAt(i int) {
	it := q.items[i]
	if it.k == kSession {
		q.users[it.u].hidx = -1
	}
	last := len(q.items) - 1
	if i != last {
		q.items[i] = q.items[last]
		q.moved(i)
	}
	q.items[last] = item{}
	q.items = q.items[:last]
	if i < last {
		if !q.down(i) {
			q.up(i)
		}
	}
}

func (q *queue) moved(i int) {
	if it := &q.items[i]; it.k == kSession {
		q.users[it.u].hidx = int32(i)
	}
}

func (q *queue) swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.moved(i)
	q.moved(j)
}

func (q *queue) up(i int) {
	q.moved(i)
	for i > 0 {
		p := (i - 1) / 2
		if !q.items[i].before(&q.items[p]) {
			break
		}
		q.swap(i, p)
		i = p
	}
}

// down sifts item i down and reports whether it moved.
func (q *queue) down(i int) bool {
	start := i
	n := len(q.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.items[r].before(&q.items[l]) {
			m = r
		}
		if !q.items[m].before(&q.items[i]) {
			break
		}
		q.swap(i, m)
		i = m
	}
	return i > start
}
