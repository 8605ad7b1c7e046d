package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the livefeed repository (this module lives in deploy/validate).
const repoRoot = "../.."

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// livefeedBin is the livefeed binary: $LIVEFEED_BIN (deploy/validate.sh
// builds it once) or one built here from the repository.
func livefeedBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("LIVEFEED_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "livefeed-validate-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "livefeed")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/livefeed")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building livefeed: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var flagLine = regexp.MustCompile(`(?m)^\s+-([a-z0-9][a-z0-9-]*)\b`)

var (
	flagsMu    sync.Mutex
	flagsCache = map[string]map[string]bool{}
)

// commandFlags are the flags `livefeed <command...> -h` lists.
func commandFlags(t *testing.T, command ...string) map[string]bool {
	t.Helper()
	key := strings.Join(command, " ")
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[key]; ok {
		return f
	}
	// A copy: command may be a slice of a manifest's args, which append
	// would overwrite.
	cmd := exec.Command(livefeedBin(t), append(append([]string(nil), command...), "-h")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("livefeed %s -h: %v\n%s", key, err, out.String())
	}
	flags := map[string]bool{}
	for _, m := range flagLine.FindAllStringSubmatch(out.String(), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("livefeed %s -h listed %d flags:\n%s", key, len(flags), out.String())
	}
	flagsCache[key] = flags
	return flags
}

// envFlag maps LIVEFEED_KAFKA_CA_FILE to kafka-ca-file (cmd/livefeed's env()).
func envFlag(env string) (string, bool) {
	name, ok := strings.CutPrefix(env, "LIVEFEED_")
	if !ok {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(name, "_", "-")), true
}

// checkEnv reports LIVEFEED_* variables that no flag of the command reads
// (a typo there would be silently ignored).
func checkEnv(t *testing.T, where string, command []string, env []string) {
	t.Helper()
	flags := commandFlags(t, command...)
	for _, e := range env {
		if flag, ok := envFlag(e); ok && !flags[flag] {
			t.Errorf("%s: %s sets --%s, which `livefeed %s` does not have", where, e, flag, strings.Join(command, " "))
		}
	}
}

// commandOf is the livefeed subcommand an argument list runs.
func commandOf(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	if args[0] == "topics" || args[0] == "features" || args[0] == "bench" || args[0] == "models" {
		if len(args) > 1 {
			return args[:2]
		}
	}
	return args[:1]
}

// flagValue returns the value of --name (as --name=v or --name v).
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// get walks a decoded YAML value along keys (strings for maps, ints for lists).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func strs(v any, path ...any) []string {
	var out []string
	for _, x := range list(v, path...) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}
