package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/twmb/franz-go/pkg/kadm"
)

// goka stores the offset of the last record applied to a partition's local
// storage under this key.
const gokaOffsetKey = "__offset"

const stateLogIDFile = "LOG_ID"

// GuardState makes sure that the local goleveldb state in c.StateDir never
// outlives the Kafka log it was built from. Goka refuses to start when a table
// topic is empty but the local state is not, and silently keeps stale state
// when the table topic is merely shorter than the local offset. Both happen
// when a broker's log is wiped while the state dir stays.
//
//   - logID (the embedded cluster's log identity; "" for real Kafka): state
//     written against another log is removed whole.
//   - for every local partition of the given table topics, the stored offset
//     must be below the topic's end offset; otherwise the partition's state is
//     removed and goka rebuilds it from the changelog.
//
// It returns the partition directories it removed.
func GuardState(ctx context.Context, c *Config, adm *kadm.Client, logID string, tables []string) ([]string, error) {
	dir := c.ProcessorStateDir()
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	var removed []string
	if logID != "" {
		idPath := filepath.Join(c.StateDir, stateLogIDFile)
		b, err := os.ReadFile(idPath)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading state log id: %w", err)
		}
		if strings.TrimSpace(string(b)) != logID {
			if _, err := os.Stat(dir); err == nil {
				c.Logger.Warn("local state was built from another Kafka log; removing it", "dir", dir)
				if err := os.RemoveAll(dir); err != nil {
					return nil, fmt.Errorf("removing stale state: %w", err)
				}
				removed = append(removed, dir)
			}
			if err := os.WriteFile(idPath, []byte(logID+"\n"), 0o644); err != nil {
				return removed, fmt.Errorf("writing state log id: %w", err)
			}
		}
	}

	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return removed, nil
	}
	if err != nil {
		return removed, fmt.Errorf("reading state dir: %w", err)
	}
	want := map[string]bool{}
	for _, t := range tables {
		want[t] = true
	}
	local := map[string]map[int32]string{} // topic → partition → dir
	for _, e := range entries {
		topic, part, ok := splitPartitionDir(e.Name())
		if !ok || !want[topic] || !e.IsDir() {
			continue
		}
		if local[topic] == nil {
			local[topic] = map[int32]string{}
		}
		local[topic][part] = filepath.Join(dir, e.Name())
	}
	if len(local) == 0 {
		return removed, nil
	}
	topics := make([]string, 0, len(local))
	for t := range local {
		topics = append(topics, t)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return removed, fmt.Errorf("listing end offsets of table topics: %w", err)
	}
	for topic, parts := range local {
		for part, pdir := range parts {
			end := int64(-1)
			if o, ok := ends.Lookup(topic, part); ok && o.Err == nil {
				end = o.Offset
			}
			stored, err := storedOffset(pdir)
			if err != nil {
				c.Logger.Warn("local state unreadable; removing it", "dir", pdir, "err", err)
			} else if stored < 0 || stored < end {
				continue // nothing stored, or consistent with the log
			} else {
				c.Logger.Warn("local state is ahead of its Kafka log; removing it so it is rebuilt from the changelog",
					"topic", topic, "partition", part, "local_offset", stored, "log_end_offset", end)
			}
			if err := os.RemoveAll(pdir); err != nil {
				return removed, fmt.Errorf("removing stale state %s: %w", pdir, err)
			}
			removed = append(removed, pdir)
		}
	}
	return removed, nil
}

func splitPartitionDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// storedOffset reads goka's stored offset of a partition dir; -1 if none.
func storedOffset(dir string) (int64, error) {
	db, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer db.Close()
	v, err := db.Get([]byte(gokaOffsetKey), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading offset in %s: %w", dir, err)
	}
	off, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing offset in %s: %w", dir, err)
	}
	return off, nil
}
