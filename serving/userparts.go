package serving

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/livefeed/livefeed/serving/usershard"
	"github.com/livefeed/livefeed/tables"
)

// UserPartitions chooses how serving replicas hold the user table.
//
// Not Shared (the default): every replica keeps a memory view of the whole
// table. Shared: the replicas split its partitions through a consumer
// group (serving/usershard), each keeping its share in goleveldb under Dir,
// and a lookup of a user another replica holds asks that replica (one hop).
// Memory then stays bounded by the block cache whatever the user count.
type UserPartitions struct {
	Shared bool
	// Dir holds the replica's share (goleveldb). Required when Shared.
	Dir string
	// Advertise is the base URL the other replicas reach this one's HTTP
	// API at (e.g. http://10.0.0.5:8080). Required when Shared.
	Advertise string
	// Group is the consumer group of the replicas. Default: the user
	// table's topic + "-serving".
	Group string
	// Standbys: 1 keeps a standby copy of every partition on another
	// replica, for failovers in milliseconds instead of a restore.
	// Default 0.
	Standbys int
	// CacheBytes bounds goleveldb's block cache. Default
	// usershard.DefaultCacheBytes.
	CacheBytes int
}

// newUserShard creates the store of the replica's user partitions.
func (s *Service) newUserShard() (*usershard.Store, error) {
	up := s.cfg.UserPartitions
	st, err := usershard.New(usershard.Options{
		Broker: s.cfg.Broker, Topic: string(s.cfg.UserTable), Group: up.Group, Dir: up.Dir,
		Advertise: up.Advertise, Standbys: up.Standbys, CacheBytes: up.CacheBytes,
		Token: s.cfg.APIToken, Registerer: s.cfg.Registerer, Logger: s.cfg.Logger,
		// A lookup retries a moving partition for at most half the
		// request's time, so the 503 says why.
		ForwardTimeout: s.cfg.RequestTimeout / 2,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the user partitions: %w", err)
	}
	return st, nil
}

// runUsers follows the user table: the memory view, or the replica's
// partitions.
func (s *Service) runUsers(ctx context.Context) error {
	if s.shard == nil {
		return s.users.Run(ctx)
	}
	err := s.shard.Run(ctx)
	return errors.Join(err, s.shard.Close())
}

// shardUser reads a user through the partitioned store: locally, or from
// the replica that holds the user's partition. A partition that no replica
// can answer for now (a move, a dead owner not yet replaced) is a 503: never
// "no such user" for a user this replica cannot see.
func (s *Service) shardUser(id string) (*tables.User, error) {
	raw, err := s.shard.Get(context.Background(), id)
	if errors.Is(err, usershard.ErrUnavailable) {
		return nil, &httpError{code: http.StatusServiceUnavailable, msg: fmt.Sprintf("user %q is on a partition that is moving between replicas; retry: %v", id, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	if raw == nil {
		return nil, nil
	}
	v, err := tables.UserCodec{}.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding user %s: %w", id, err)
	}
	u, _ := v.(*tables.User)
	return u, nil
}

// mountUserPartitions adds the routes of partitioned users (Shared only):
// the local lookup other replicas forward to, and the partition map a
// client routes with. Both need the API token like /v1.
func (s *Service) mountUserPartitions(mux *http.ServeMux) {
	if s.shard == nil {
		return
	}
	mux.Handle("GET "+usershard.LocalPath+"{id}", s.apiRoute("user_local", func(w http.ResponseWriter, r *http.Request) error {
		s.shard.ServeLocal(w, r.PathValue("id"))
		return nil
	}))
	mux.Handle("GET /v1/user-partitions", s.apiRoute("user_partitions", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.shard.Map())
		return nil
	}))
}
