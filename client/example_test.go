package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/client"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/servingtest"
)

// serverURL is a real serving API that TestMain starts for the examples
// (an Example has no *testing.T): the catalogue's streams, user u1 and
// seller A, behind the bearer token "feed-token".
var serverURL string

func TestMain(m *testing.M) {
	os.Exit(servingtest.Main(m, func(tb servingtest.TB) {
		env := servingtest.Start(tb, func(c *serving.Config) { c.APIToken = token })
		env.PutStreams(tb, catalogue...)
		env.PutUser(tb, "u1", []string{"cards"}, "a1")
		serverURL = env.URL
	}))
}

// The feed service asks which live streams to show a user: typed filters
// and ranking in, typed results out, no hand-written JSON.
func Example() {
	c, err := client.New(client.Options{BaseURL: serverURL, Token: "feed-token", Timeout: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Recommendations(ctx, api.RecommendationsRequest{
		UserID:       "u1",
		K:            3,
		Filter:       api.Filter{Categories: []string{"cards", "shoes"}, Ranges: []api.Range{api.AtLeast(api.AttrViewersNow, 10)}},
		Formula:      "similarity * log1p(viewers_now)",
		MaxPerSeller: 1,
	})
	if err != nil {
		var apiErr *client.Error
		if errors.As(err, &apiErr) && apiErr.StatusCode == 400 {
			log.Fatalf("bad request: %s", apiErr.Message)
		}
		log.Fatal(err) // the server is down, or the context ended
	}
	fmt.Println("strategy:", resp.Strategy)
	for _, r := range resp.Results {
		fmt.Printf("%s %s viewers=%d score=%.2f\n", r.LivestreamID, r.Category, r.ViewersNow, r.Score)
	}
	// Output:
	// strategy: taste
	// a2 cards viewers=100 score=4.52
	// b1 cards viewers=50 score=3.54
	// c1 shoes viewers=1000 score=3.45
}

// A feature lookup: Values keeps a feature without a value as null
// (api.Null), and Features, the numbers, leaves it out.
func ExampleClient_Livestream() {
	c, err := client.New(client.Options{BaseURL: serverURL, Token: "feed-token"})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"a1", "c1"} {
		ls, err := c.Livestream(context.Background(), id, client.Lookup{})
		if err != nil {
			log.Fatal(err)
		}
		maxBid, ok := ls.Features["max_bid_5m"]
		fmt.Printf("%s bids_5m=%v max_bid_5m=%v (%s, in features: %v)\n", id, ls.Features["bids_5m"], maxBid, ls.Values["max_bid_5m"].Kind, ok)
	}
	// Output:
	// a1 bids_5m=0 max_bid_5m=0 (null, in features: false)
	// c1 bids_5m=7 max_bid_5m=10 (number, in features: true)
}

// Search by text (the server embeds it with its model) or by vector; a
// vector of the wrong dimension is a 400 that says the index's.
func ExampleClient_SearchVector() {
	c, err := client.New(client.Options{BaseURL: serverURL, Token: "feed-token"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.SearchVector(context.Background(), []float32{0.1, 0.2}, 5, nil)
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.ExpectedDimensions, apiErr.ReceivedDimensions)
	}
	resp, err := c.SearchVector(context.Background(), []float32{0, 0, 1, 0}, 1, &api.Filter{Categories: []string{"shoes"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Results[0].LivestreamID)
	// Output:
	// 400 [4] 2
	// c1
}
