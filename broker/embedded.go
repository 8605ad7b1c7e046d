package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol cluster (franz-go's kfake) for the
// demo and the tests.
type Embedded struct {
	cluster *kfake.Cluster
	// LogID identifies the log kept in the data dir; local state built from
	// another log must be discarded.
	LogID string
}

// StartEmbedded starts a one-broker kfake cluster on addr ("127.0.0.1:0" for
// any free port). With a non-empty dataDir its log survives restarts.
func StartEmbedded(addr string, dataDir string) (*Embedded, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
	}
	if port, err := portOf(addr); err != nil {
		return nil, err
	} else if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	var logID string
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating kafka data dir: %w", err)
		}
		id, err := readOrCreateLogID(dataDir)
		if err != nil {
			return nil, err
		}
		logID = id
		opts = append(opts, kfake.DataDir(dataDir))
	} else {
		logID = newID()
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded kafka: %w", err)
	}
	return &Embedded{cluster: c, LogID: logID}, nil
}

// Addrs are the listen addresses of the cluster.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the cluster (and persists its log when it has a data dir).
func (e *Embedded) Close() { e.cluster.Close() }

func portOf(addr string) (int, error) {
	if addr == "" {
		return 0, nil
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("embedded kafka address %q: want host:port", addr)
	}
	var port int
	if _, err := fmt.Sscanf(addr[i+1:], "%d", &port); err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("embedded kafka address %q: bad port", addr)
	}
	return port, nil
}

const logIDFile = "LIVEFEED_LOG_ID"

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func readOrCreateLogID(dir string) (string, error) {
	p := filepath.Join(dir, logIDFile)
	b, err := os.ReadFile(p)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading log id: %w", err)
	}
	id := newID()
	if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing log id: %w", err)
	}
	return id, nil
}
