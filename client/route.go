package client

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// userRoutes is the client's copy of the servers' user-partition map (GET
// /v1/user-partitions, served by `serve --user-partitions=shared`): user
// requests go straight to the replica holding the user's partition, which
// saves the hop a replica would otherwise forward.
type userRoutes struct {
	mu      sync.Mutex
	owners  []string // base URL per partition; nil: route nothing
	fetched time.Time
	stale   bool
}

// userPartitionMap is the part of GET /v1/user-partitions the client
// reads.
type userPartitionMap struct {
	Partitions int32    `json:"partitions"`
	Owners     []string `json:"owners"`
}

// baseFor returns the base URL a request about userID goes to: its
// partition's owner when Options.RouteUsers is on and the map knows it,
// else Options.BaseURL.
func (c *Client) baseFor(ctx context.Context, userID string) string {
	if !c.o.RouteUsers || userID == "" {
		return c.o.BaseURL
	}
	r := &c.routes
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stale || time.Since(r.fetched) > c.o.RouteRefresh {
		r.owners = c.fetchOwners(ctx)
		r.fetched, r.stale = time.Now(), false
	}
	if len(r.owners) == 0 {
		return c.o.BaseURL
	}
	if owner := r.owners[partition(userID, int32(len(r.owners)))]; owner != "" {
		return owner
	}
	return c.o.BaseURL
}

// routeFailed marks the map stale after a routed attempt failed (the
// partition moved, the owner died): the next request reads it again.
func (c *Client) routeFailed() {
	c.routes.mu.Lock()
	c.routes.stale = true
	c.routes.mu.Unlock()
}

// fetchOwners reads the map from BaseURL; nil when it cannot (a server
// without shared user partitions answers 404: nothing is routed).
func (c *Client) fetchOwners(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, min(c.o.Timeout, time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.o.BaseURL+"/v1/user-partitions", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("User-Agent", c.o.UserAgent)
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m userPartitionMap
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil || int(m.Partitions) != len(m.Owners) {
		return nil
	}
	return m.Owners
}

// partition is Kafka's default partitioner for a key (murmur2, masked
// positive, modulo n): where the processors write a user, so where its
// owner holds it.
func partition(key string, n int32) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(key)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(key[i]) | uint32(key[i+1])<<8 | uint32(key[i+2])<<16 | uint32(key[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(key[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h&0x7fffffff) % n
}
