package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const flagTestPassword = "flag-test-Pa55word-0815"

func TestKafkaSecurityFlags(t *testing.T) {
	t.Setenv("LIVEFEED_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("LIVEFEED_KAFKA_USERNAME", "alice")
	t.Setenv("LIVEFEED_KAFKA_PASSWORD", flagTestPassword)
	f := newFlags("process", false, false)
	if err := f.parse([]string{"--brokers", "b:9093", "--kafka-tls", "--kafka-ca-file", "/ca.pem"}, true); err != nil {
		t.Fatal(err)
	}
	k := f.cfg.Kafka
	if !k.TLS || k.CAFile != "/ca.pem" || k.Mechanism() != "SCRAM-SHA-512" || k.Username != "alice" || k.Password.Reveal() != flagTestPassword {
		t.Fatalf("flags/env → %v (password %q)", k, k.Password.Reveal())
	}

	// The flag wins over the environment.
	f = newFlags("process", false, false)
	if err := f.parse([]string{"--brokers", "b", "--kafka-password", "from-flag"}, true); err != nil {
		t.Fatal(err)
	}
	if got := f.cfg.Kafka.Password.Reveal(); got != "from-flag" {
		t.Fatalf("password %q, want the flag's", got)
	}

	// A password file (a mounted secret) without the environment variable.
	t.Setenv("LIVEFEED_KAFKA_PASSWORD", "")
	os.Unsetenv("LIVEFEED_KAFKA_PASSWORD")
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(flagTestPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f = newFlags("serve", false, false)
	if err := f.parse([]string{"--brokers", "b", "--kafka-password-file", pwFile}, true); err != nil {
		t.Fatal(err)
	}
	if got := f.cfg.Kafka.Password.Reveal(); got != flagTestPassword {
		t.Fatalf("password from file %q", got)
	}
	f = newFlags("serve", false, false)
	err := f.parse([]string{"--brokers", "b", "--kafka-password-file", pwFile, "--kafka-password", "x"}, true)
	if err == nil || !strings.Contains(err.Error(), "give the kafka password once") {
		t.Fatalf("password twice: %v", err)
	}
}

// -h lists the flags with their defaults from the environment, but never the
// password.
func TestHelpDoesNotShowPassword(t *testing.T) {
	t.Setenv("LIVEFEED_KAFKA_PASSWORD", flagTestPassword)
	f := newFlags("process", false, false)
	var out bytes.Buffer
	f.fs.SetOutput(&out)
	if err := f.parse([]string{"-h"}, true); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parse -h: %v", err)
	}
	if !strings.Contains(out.String(), "-kafka-sasl-mechanism") {
		t.Fatalf("help lacks the kafka flags:\n%s", out.String())
	}
	if strings.Contains(out.String(), flagTestPassword) {
		t.Fatalf("help shows the password:\n%s", out.String())
	}
}

func TestKafkaSecurityRejected(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--brokers", "127.0.0.1:1", "--kafka-sasl-mechanism", "PLAIN", "--kafka-username", "u"}, "SASL PLAIN needs a password"},
		{[]string{"--brokers", "127.0.0.1:1", "--kafka-sasl-mechanism", "OAUTH", "--kafka-username", "u", "--kafka-password", "p"}, "unknown SASL mechanism"},
		{[]string{"--brokers", "127.0.0.1:1", "--kafka-ca-file", "/does/not/exist.pem"}, "reading kafka CA file"},
	} {
		err := run(ctx, "topics", append([]string{"create", "--data", t.TempDir()}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("livefeed topics create %v: %v, want %q", tc.args, err, tc.wantErr)
		}
	}
	err := run(ctx, "demo", []string{"--kafka-tls", "--data", t.TempDir(), "--no-embeddings"})
	if err == nil || !strings.Contains(err.Error(), "need --brokers") {
		t.Errorf("demo with --kafka-tls on the embedded cluster: %v", err)
	}
}

// Against the SASL_SSL broker of deploy/kafka/kafka-secure.sh, the binary's
// own code path (flags, environment, app, topic creation, simulator) works
// with SCRAM-SHA-512 over TLS, and its debug log never contains the password.
func TestSecureBrokerCommands(t *testing.T) {
	brokers := os.Getenv("LIVEFEED_TEST_SECURE_BROKERS")
	if brokers == "" {
		t.Skip(`no SASL_SSL broker: eval "$(deploy/kafka/kafka-secure.sh start)"; LIVEFEED_TEST_SECURE_BROKERS=$KAFKA_SECURE_BROKERS`)
	}
	password := os.Getenv("KAFKA_SECURE_SCRAM_PASSWORD")
	t.Setenv("LIVEFEED_KAFKA_PASSWORD", password)
	t.Setenv("LIVEFEED_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("LIVEFEED_KAFKA_USERNAME", os.Getenv("KAFKA_SECURE_SCRAM_USERNAME"))
	t.Setenv("LIVEFEED_KAFKA_CA_FILE", os.Getenv("KAFKA_SECURE_CA_FILE"))

	logFile := filepath.Join(t.TempDir(), "stderr.log")
	stderrFile, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	stderr, stdout := os.Stderr, os.Stdout
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	os.Stderr, os.Stdout = stderrFile, devnull
	defer func() { os.Stderr, os.Stdout = stderr, stdout }()

	prefix := "secure-cmd-" + strings.ReplaceAll(t.Name(), "/", "-")
	common := []string{"--brokers", brokers, "--topic-prefix", prefix, "--partitions", "2", "--log-level", "debug", "--data", t.TempDir()}
	ctx := context.Background()
	if err := run(ctx, "topics", append([]string{"create"}, common...)); err != nil {
		t.Fatalf("topics create over SASL_SSL: %v", err)
	}
	if err := run(ctx, "simulate", append([]string{"--limit", "200", "--rate", "0"}, common...)); err != nil {
		t.Fatalf("simulate over SASL_SSL: %v", err)
	}
	wrong := append([]string{"create", "--kafka-password", "wrong-" + password}, common...)
	wrongErr := run(ctx, "topics", wrong)
	if wrongErr == nil || !strings.Contains(wrongErr.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("a wrong password: %v", wrongErr)
	}
	os.Stderr, os.Stdout = stderr, stdout
	stderrFile.Close()
	logs, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logs), password) || strings.Contains(wrongErr.Error(), password) {
		t.Fatalf("the password was logged:\n%s", logs)
	}
	if !strings.Contains(string(logs), "security.protocol=SASL_SSL") || !strings.Contains(string(logs), "security.password=[REDACTED]") {
		t.Fatalf("expected the logged kafka settings, redacted (else the check above proves nothing):\n%s", logs)
	}
}
