package simulate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config describes the simulated marketplace. The zero value of every field
// but Seed and BadFraction means "the default" (see Defaults).
type Config struct {
	// Seed makes the generator deterministic: the same seed and the same
	// sequence of Next times give the same records, byte for byte.
	Seed int64
	// Users is the size of the buyer population (default 2000). A user
	// watches at most one stream at a time.
	Users int
	// Sellers is the number of sellers (default 200); each has a main
	// category and streams at most once at a time, so Sellers must be at
	// least LiveStreams.
	Sellers int
	// LiveStreams is the target number of concurrently live streams
	// (default 100).
	LiveStreams int
	// Categories restricts the marketplace to these catalog categories
	// (default: all of Categories()).
	Categories []string
	// BadFraction is the fraction of records that are deliberately
	// malformed or invalid, for the dead-letter path (default 0).
	BadFraction float64
	// SessionMean is the mean length of a viewing session in simulated time
	// (default 6m; exponentially distributed, at least 10s).
	SessionMean time.Duration
	// StreamMean is the mean length of a livestream in simulated time
	// (default 40m; uniform in [0.5, 1.5]×StreamMean).
	StreamMean time.Duration
	// AuctionMean is the mean length of an auction in simulated time
	// (default 40s; uniform in [0.5, 1.5]×AuctionMean).
	AuctionMean time.Duration
	// Heartbeat is the interval between viewing heartbeats of a session in
	// simulated time (default 30s).
	Heartbeat time.Duration
}

// Defaults used by Config.Defaults.
const (
	DefaultUsers       = 2000
	DefaultSellers     = 200
	DefaultLiveStreams = 100
	DefaultSessionMean = 6 * time.Minute
	DefaultStreamMean  = 40 * time.Minute
	DefaultAuctionMean = 40 * time.Second
	DefaultHeartbeat   = 30 * time.Second
)

// Defaults fills the zero fields with their defaults.
func (c *Config) Defaults() {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Sellers == 0 {
		c.Sellers = DefaultSellers
	}
	if c.LiveStreams == 0 {
		c.LiveStreams = DefaultLiveStreams
	}
	if len(c.Categories) == 0 {
		c.Categories = Categories()
	}
	if c.SessionMean == 0 {
		c.SessionMean = DefaultSessionMean
	}
	if c.StreamMean == 0 {
		c.StreamMean = DefaultStreamMean
	}
	if c.AuctionMean == 0 {
		c.AuctionMean = DefaultAuctionMean
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
}

// Limits checked by Validate.
const (
	MaxUsers   = 10_000_000
	MaxSellers = 1_000_000
)

// Validate reports the first problem of the configuration. Call Defaults
// first: zero sizes and durations are invalid.
func (c *Config) Validate() error {
	switch {
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("simulate: users must be 1..%d, got %d", MaxUsers, c.Users)
	case c.Sellers < 1 || c.Sellers > MaxSellers:
		return fmt.Errorf("simulate: sellers must be 1..%d, got %d", MaxSellers, c.Sellers)
	case c.LiveStreams < 1:
		return fmt.Errorf("simulate: live streams must be at least 1, got %d", c.LiveStreams)
	case c.LiveStreams > c.Sellers:
		return fmt.Errorf("simulate: %d live streams need at least as many sellers, got %d", c.LiveStreams, c.Sellers)
	case math.IsNaN(c.BadFraction) || c.BadFraction < 0 || c.BadFraction > 1:
		return fmt.Errorf("simulate: bad fraction must be in [0, 1], got %v", c.BadFraction)
	case c.SessionMean <= 0:
		return fmt.Errorf("simulate: session mean must be positive, got %v", c.SessionMean)
	case c.StreamMean < time.Second:
		return fmt.Errorf("simulate: stream mean must be at least 1s, got %v", c.StreamMean)
	case c.AuctionMean < 100*time.Millisecond:
		return fmt.Errorf("simulate: auction mean must be at least 100ms, got %v", c.AuctionMean)
	case c.Heartbeat <= 0:
		return fmt.Errorf("simulate: heartbeat must be positive, got %v", c.Heartbeat)
	case len(c.Categories) == 0:
		return errors.New("simulate: no categories")
	}
	known := Catalog()
	seen := make(map[string]bool, len(c.Categories))
	for _, id := range c.Categories {
		if _, ok := known[id]; !ok {
			return fmt.Errorf("simulate: unknown category %q (known: %v)", id, Categories())
		}
		if seen[id] {
			return fmt.Errorf("simulate: category %q listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// FitRate sizes the marketplace for an event rate (events per second of
// simulated time): it sets Users, LiveStreams and Sellers, where zero, so that
// the event mix stays realistic at that rate. The defaults suit about 200
// events/s; at much higher rates a default-sized crowd becomes hyperactive
// (sessions of seconds, few bids), at much lower rates auctions and status
// changes crowd out viewing and chat. A rate <= 0 leaves c unchanged.
func (c *Config) FitRate(rate float64) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return
	}
	const maxRate = 1e6
	rate = math.Min(rate, maxRate)
	if c.Users == 0 {
		// A viewer heartbeats every 30s and heartbeats are about a third of
		// the events: about 11 users per event/s.
		c.Users = max(100, int(math.Ceil(rate*11)))
	}
	if c.LiveStreams == 0 {
		c.LiveStreams = max(5, int(math.Ceil(rate/2)))
	}
	if c.Sellers == 0 {
		c.Sellers = max(2*c.LiveStreams, 20)
	}
}
