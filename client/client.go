// Package client is the feed service's Go client of livefeed's serving API:
// recommendations, vector and text search, named queries and feature
// lookups, with the request and answer types of package api — the very
// types serving encodes, so the two cannot drift.
//
// A Client is safe for concurrent use. Every call takes a context (which
// bounds the whole call, retries included); each attempt is bounded by
// Options.Timeout; a 503 (the server's time limit, a request it could not
// finish) is retried after a backoff. Other failures come back at once: an
// HTTP error as *Error, anything else (connection refused, a cancelled
// context) as the transport's error.
//
// The package imports only the standard library and package api.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/api"
)

// Options configure a Client. Zero values take the defaults written in
// each field's comment.
type Options struct {
	// BaseURL is the serving API's address, e.g. http://localhost:8080.
	// Required.
	BaseURL string
	// Token is the bearer token of the /v1 routes (serve's --api-token);
	// empty sends none.
	Token string
	// HTTPClient sends the requests. Default: a client of its own over
	// http.DefaultTransport (its Timeout is left alone: Timeout below
	// bounds each attempt).
	HTTPClient *http.Client
	// Timeout bounds each attempt: sending, the server's work and reading
	// the answer. Default 5s (serving's own limit per request is 5s by
	// default, after which it answers 503). Negative: no limit but the
	// context's.
	Timeout time.Duration
	// Retries is how many times a call that got a 503 is sent again.
	// Default 2; negative: never.
	Retries int
	// Backoff is the wait before the first retry, doubled before each next
	// one, at most MaxBackoff; each wait is drawn from [w/2, w] so that
	// clients that failed together do not retry together. A Retry-After
	// header in seconds replaces w (still at most MaxBackoff). Defaults
	// 100ms and 2s.
	Backoff, MaxBackoff time.Duration
	// UserAgent is sent with every request. Default "livefeed-client".
	UserAgent string
	// RouteUsers sends the requests about one user (Recommendations,
	// User, Query with a user id) straight to the serving replica that
	// holds the user's partition, by the map of GET /v1/user-partitions
	// (servers run with --user-partitions=shared; other servers have no
	// map and everything goes to BaseURL). The replicas' advertised
	// addresses must be reachable from the client. A routed attempt that
	// fails to connect or answers 503 is retried through BaseURL (whose
	// replica forwards) and the map is read again. Default false.
	RouteUsers bool
	// RouteRefresh is how often the map is read again. Default 10s.
	RouteRefresh time.Duration
}

// Default option values.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultRetries    = 2
	DefaultBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
	DefaultUserAgent  = "livefeed-client"
)

// withDefaults fills the zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.BaseURL == "" {
		return o, errors.New("client: Options.BaseURL is required")
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, fmt.Errorf("client: Options.BaseURL %q: want http(s)://host[:port][/prefix]", o.BaseURL)
	}
	o.BaseURL = strings.TrimSuffix(o.BaseURL, "/")
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.Backoff {
		return o, fmt.Errorf("client: Options.MaxBackoff %v is less than Backoff %v", o.MaxBackoff, o.Backoff)
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.RouteRefresh <= 0 {
		o.RouteRefresh = 10 * time.Second
	}
	return o, nil
}

// Client calls one serving API.
type Client struct {
	o      Options
	routes userRoutes // RouteUsers (route.go)
}

// New returns a client for opts (see Options for the defaults).
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{o: o}, nil
}

// Error is an error answer of the API: its HTTP status and the server's
// message. Test for it with errors.As.
type Error struct {
	StatusCode int
	Message    string
	// ExpectedDimensions and ReceivedDimensions come with the 400 of a
	// search vector whose dimension is not the index's.
	ExpectedDimensions []int
	ReceivedDimensions int
	// Attempts is how many times the request was sent (more than one after
	// retried 503s).
	Attempts int
}

func (e *Error) Error() string {
	return fmt.Sprintf("livefeed: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// IsNotFound reports whether err is a 404 answer (an unknown stream, user,
// entity id or named query).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Recommendations returns the top live streams for a user (GET
// /v1/recommendations).
func (c *Client) Recommendations(ctx context.Context, req api.RecommendationsRequest) (*api.Response, error) {
	var out api.Response
	return &out, c.doUser(ctx, req.UserID, http.MethodGet, "/v1/recommendations", req.Query(), nil, &out)
}

// Search finds streams near a vector, or near a text's embedding when the
// server has a model (POST /v1/search): set exactly one of req.Vector and
// req.Text.
func (c *Client) Search(ctx context.Context, req api.SearchRequest) (*api.Response, error) {
	var out api.Response
	return &out, c.do(ctx, http.MethodPost, "/v1/search", nil, req, &out)
}

// SearchVector is Search for a vector: the k streams most similar to vec
// that pass filter (nil: live streams).
func (c *Client) SearchVector(ctx context.Context, vec []float32, k int, filter *api.Filter) (*api.Response, error) {
	return c.Search(ctx, api.SearchRequest{Vector: vec, K: k, Filter: filter})
}

// SearchText is Search for a text: the k streams most similar to its
// embedding that pass filter (nil: live streams).
func (c *Client) SearchText(ctx context.Context, text string, k int, filter *api.Filter) (*api.Response, error) {
	return c.Search(ctx, api.SearchRequest{Text: text, K: k, Filter: filter})
}

// Queries lists the server's named queries with their parameters (GET
// /v1/queries).
func (c *Client) Queries(ctx context.Context) ([]api.NamedQuery, error) {
	var out api.QueryList
	if err := c.do(ctx, http.MethodGet, "/v1/queries", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Queries, nil
}

// Query runs a named query (POST /v1/queries/{name}).
func (c *Client) Query(ctx context.Context, name string, req api.QueryRequest) (*api.Response, error) {
	var out api.Response
	return &out, c.doUser(ctx, req.UserID, http.MethodPost, "/v1/queries/"+url.PathEscape(name), nil, req, &out)
}

// Lookup is how a feature lookup reads: At evaluates the windows at a
// point in time (zero: now); Embedding adds the entity's vector.
type Lookup struct {
	At        time.Time
	Embedding bool
}

func (l Lookup) query() url.Values {
	q := url.Values{}
	if !l.At.IsZero() {
		q.Set("at", l.At.Format(time.RFC3339Nano))
	}
	if l.Embedding {
		q.Set("embedding", "true")
	}
	return q
}

// Livestream returns a stream's metadata and features (GET
// /v1/features/livestream/{id}); an unknown id is an *Error with status
// 404 (IsNotFound).
func (c *Client) Livestream(ctx context.Context, id string, l Lookup) (*api.LivestreamFeatures, error) {
	var out api.LivestreamFeatures
	return &out, c.do(ctx, http.MethodGet, "/v1/features/livestream/"+url.PathEscape(id), l.query(), nil, &out)
}

// User returns a user's taste summary and features (GET
// /v1/features/user/{id}); with l.Embedding the taste vector.
func (c *Client) User(ctx context.Context, id string, l Lookup) (*api.UserFeatures, error) {
	var out api.UserFeatures
	return &out, c.doUser(ctx, id, http.MethodGet, "/v1/features/user/"+url.PathEscape(id), l.query(), nil, &out)
}

// Entity returns the features of another entity, e.g. a seller (GET
// /v1/features/{entity}/{id}); an entity without features is a 400.
func (c *Client) Entity(ctx context.Context, entity, id string, l Lookup) (*api.EntityFeatures, error) {
	var out api.EntityFeatures
	return &out, c.do(ctx, http.MethodGet, "/v1/features/"+url.PathEscape(entity)+"/"+url.PathEscape(id), l.query(), nil, &out)
}

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 64 << 10

// do sends one call, retrying 503s, and decodes a 200 answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	return c.doUser(ctx, "", method, path, q, body, out)
}

// doUser is do for a request about userID: with Options.RouteUsers its
// first attempt goes to the user's replica, and after a failure there the
// attempts go to BaseURL.
func (c *Client) doUser(ctx context.Context, userID, method, path string, q url.Values, body any, out any) error {
	query := ""
	if len(q) > 0 {
		query = "?" + q.Encode()
	}
	base := c.baseFor(ctx, userID)
	u := base + path + query
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("livefeed: encoding the %s %s body: %w", method, path, err)
		}
	}
	wait := c.o.Backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := c.attempt(ctx, method, u, payload, out)
		var he *Error
		if routed := base != c.o.BaseURL; routed && err != nil && ctx.Err() == nil &&
			(!errors.As(err, &he) || he.StatusCode == http.StatusServiceUnavailable) {
			// The owner moved or died: the next attempt goes through
			// BaseURL at once, which forwards to the current owner.
			c.routeFailed()
			base, u = c.o.BaseURL, c.o.BaseURL+path+query
			continue
		}
		if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || attempt > c.o.Retries {
			if he != nil {
				he.Attempts = attempt
			}
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		if retryAfter > 0 {
			d = min(retryAfter, c.o.MaxBackoff)
		}
		wait = min(2*wait, c.o.MaxBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			he.Attempts = attempt
			return fmt.Errorf("livefeed: %s %s: retry cut short: %w: %w", method, path, ctx.Err(), he)
		case <-t.C:
		}
	}
}

// attempt sends the request once. A non-2xx answer is an *Error; a 503's
// Retry-After (seconds) comes back as retryAfter.
func (c *Client) attempt(ctx context.Context, method, u string, payload []byte, out any) (retryAfter time.Duration, err error) {
	if c.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.Timeout)
		defer cancel()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, fmt.Errorf("livefeed: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.o.UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("livefeed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := &Error{StatusCode: resp.StatusCode}
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
			e.Message, e.ExpectedDimensions, e.ReceivedDimensions = eb.Error, eb.ExpectedDimensions, eb.ReceivedDimensions
		} else {
			// Not the API's error body: a proxy's page, say.
			e.Message = strings.TrimSpace(string(raw))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, e
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return 0, fmt.Errorf("livefeed: decoding the answer of %s %s: %w", method, req.URL.Path, err)
	}
	return 0, nil
}
