package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Every flag of a command can also be set as LIVEFEED_<FLAG> (dashes as
// underscores). A variable is parsed exactly as its flag would be, after the
// command line (which wins): a bad value is an error naming the variable,
// the value and what the flag expects, never a silent fall-back to the
// default.

// envName is the environment variable of a flag: LIVEFEED_<FLAG>.
func envName(flagName string) string {
	return "LIVEFEED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// env is the string default of a flag outside a command's FlagSet (models
// pull --dir reads LIVEFEED_MODELS_DIR).
func env(name, def string) string {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v
	}
	return def
}

// noEnv are flags without a LIVEFEED_<FLAG> of their own: secrets, read
// from their variables apart (kafkaflags.go, servingFlags) so that -h and
// the flag/environment precedence never expose them.
var noEnv = map[string]bool{"kafka-password": true, "api-token": true}

// otherEnv are LIVEFEED_* variables read by something other than a flag:
// the secrets above, defaults of their own, and the test suites' and
// scripts' settings. Any other LIVEFEED_* variable that no flag of the
// command reads is reported (a misspelt name would else be ignored).
var otherEnv = []string{"LIVEFEED_API_TOKEN", "LIVEFEED_KAFKA_PASSWORD", "LIVEFEED_ORT_LIB_DIR", "LIVEFEED_MODELS_DIR",
	"LIVEFEED_MODEL_CACHE", "LIVEFEED_TOOLS", "LIVEFEED_BIN", "LIVEFEED_TEST_", "LIVEFEED_BENCH_"}

// applyEnv sets every flag of fs that the command line left unset from its
// LIVEFEED_<FLAG> variable. It returns the flags so set (flag → variable)
// and one error per bad variable.
func applyEnv(fs *flag.FlagSet) (map[string]string, error) {
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	fromEnv := map[string]string{}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] || noEnv[f.Name] {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q: want %s (it sets --%s)", name, v, expected(f), f.Name))
			return
		}
		fromEnv[f.Name] = name
	})
	return fromEnv, errors.Join(errs...)
}

// expected says what a flag's value must look like.
func expected(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "a value for --" + f.Name
	}
	if e, ok := g.Get().(interface{ Expected() string }); ok { // e.g. --misrouted
		return e.Expected()
	}
	switch g.Get().(type) {
	case bool:
		return "a boolean: 1, t, T, true, TRUE, True, 0, f, F, false, FALSE or False"
	case int, int64:
		return "an integer"
	case uint, uint64:
		return "an integer >= 0"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration with a unit, e.g. 300ms, 1.5s, 90m, 24h"
	default:
		return "a value for --" + f.Name
	}
}

var badFlagValue = regexp.MustCompile(`^invalid (?:boolean )?value "(?:[^"\\]|\\.)*" for (?:flag )?-([a-z0-9-]+): `)

// explainFlagError adds what a flag expects to the flag package's
// "invalid value" error.
func explainFlagError(fs *flag.FlagSet, err error) error {
	m := badFlagValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[1])
	if f == nil {
		return err
	}
	return fmt.Errorf("%w; want %s", err, expected(f))
}

// warnUnknownEnv logs LIVEFEED_* variables that no flag of fs reads.
func warnUnknownEnv(fs *flag.FlagSet, log *slog.Logger) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LIVEFEED_") {
			continue
		}
		if slices.ContainsFunc(otherEnv, func(o string) bool {
			return name == o || strings.HasSuffix(o, "_") && strings.HasPrefix(name, o)
		}) {
			continue
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "LIVEFEED_"), "_", "-"))
		if fs.Lookup(flagName) == nil {
			log.Warn("environment variable ignored: no flag of this command reads it", "variable", name, "command", fs.Name())
		}
	}
}
