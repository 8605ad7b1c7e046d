package features

import "time"

// LivestreamDefaults are the windowed engagement metrics every livestream
// carries until the feature-definition file replaces them.
func LivestreamDefaults() []Definition {
	lat := 2 * time.Minute
	return []Definition{
		{Name: "joins_5m", Source: "viewing", Types: []string{"join"}, Aggregation: Count, Window: Window{5 * time.Minute, 30 * time.Second}, Lateness: lat},
		{Name: "chat_1m", Source: "chat", Aggregation: Count, Window: Window{time.Minute, 5 * time.Second}, Lateness: lat},
		{Name: "chat_5m", Source: "chat", Aggregation: Count, Window: Window{5 * time.Minute, 30 * time.Second}, Lateness: lat},
		{Name: "bids_5m", Source: "auctions", Types: []string{"bid"}, Aggregation: Count, Window: Window{5 * time.Minute, 30 * time.Second}, Lateness: lat},
		{Name: "sold_1h", Source: "auctions", Types: []string{"sold"}, Aggregation: Count, Window: Window{time.Hour, 5 * time.Minute}, Lateness: lat},
		{Name: "gmv_1h", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Sum, Window: Window{time.Hour, 5 * time.Minute}, Lateness: lat},
		{Name: "avg_sale_1h", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Mean, Window: Window{time.Hour, 5 * time.Minute}, Lateness: lat},
	}
}
