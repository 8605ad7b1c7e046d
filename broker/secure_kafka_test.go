package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
)

// secureEnv is the SASL_SSL broker of deploy/kafka/kafka-secure.sh.
type secureEnv struct {
	brokers                  []string
	caFile                   string
	plainUser, plainPassword string
	scramUser, scramPassword string
}

// secureBroker returns the SASL_SSL test broker, or skips the test.
func secureBroker(t *testing.T) secureEnv {
	t.Helper()
	b := os.Getenv("LIVEFEED_TEST_SECURE_BROKERS")
	if b == "" {
		t.Skip(`no SASL_SSL broker: run  eval "$(deploy/kafka/kafka-secure.sh start)"; ` +
			`LIVEFEED_TEST_SECURE_BROKERS=$KAFKA_SECURE_BROKERS go test ./broker/ -run Secure  (.ci/run does)`)
	}
	e := secureEnv{
		brokers:       strings.Split(b, ","),
		caFile:        os.Getenv("KAFKA_SECURE_CA_FILE"),
		plainUser:     os.Getenv("KAFKA_SECURE_PLAIN_USERNAME"),
		plainPassword: os.Getenv("KAFKA_SECURE_PLAIN_PASSWORD"),
		scramUser:     os.Getenv("KAFKA_SECURE_SCRAM_USERNAME"),
		scramPassword: os.Getenv("KAFKA_SECURE_SCRAM_PASSWORD"),
	}
	if e.caFile == "" || e.plainPassword == "" || e.scramPassword == "" {
		t.Fatal("LIVEFEED_TEST_SECURE_BROKERS is set but the KAFKA_SECURE_* variables of kafka-secure.sh are not")
	}
	return e
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// For SASL PLAIN and SCRAM-SHA-512 over TLS, livefeed's clients work through
// the SASL_SSL broker: franz-go creates the topic and produces, a goka
// processor (on franz-go, broker/kgoka: consumer group, producer, topic
// manager creating its table) counts per key, a goka view reads the counts.
// Nothing logged at debug level contains the password. A wrong password
// fails with an authentication error.
func TestSecureBrokerEndToEnd(t *testing.T) {
	env := secureBroker(t)
	for _, mech := range []string{SASLPlain, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			user, pass := env.plainUser, env.plainPassword
			if mech != SASLPlain {
				user, pass = env.scramUser, env.scramPassword
			}
			logs := &lockedBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := &Config{
				Brokers:  env.brokers,
				StateDir: t.TempDir(),
				Logger:   logger,
				Security: Security{TLS: true, CAFile: env.caFile, SASLMechanism: mech, Username: user, Password: Secret(pass)},
			}
			cfg.Defaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			logger.Info("kafka configuration", "security", cfg.Security, "config", cfg)
			runSecurePipeline(t, cfg)
			if strings.Contains(logs.String(), pass) {
				t.Fatalf("the password appears in the debug log:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "SASL_SSL") {
				t.Fatalf("the configuration was not logged (the check above proves nothing):\n%s", logs.String())
			}

			wrong := *cfg
			wrong.Security.Password = "not-" + Secret(pass)
			if err := wrong.Validate(); err != nil {
				t.Fatal(err)
			}
			checkWrongPassword(t, &wrong, true)
		})
	}
}

func runSecurePipeline(t *testing.T, cfg *Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := cfg.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("secure-%s-%d", strings.ToLower(cfg.Security.Mechanism()), time.Now().UnixNano())
	input := prefix + "-input"
	group := goka.Group(prefix + "-counter")

	cl, err := kgo.NewClient(cfg.KgoOpts(kgo.RecordPartitioner(Partitioner()), kgo.MetadataMinAge(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created, err := EnsureTopics(ctx, cl, cfg.Replication, []TopicSpec{{Name: input, Partitions: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 {
		t.Fatalf("created %v, want the input topic", created)
	}
	const keys, perKey = 20, 5
	for i := range keys * perKey {
		r := &kgo.Record{Topic: input, Key: fmt.Appendf(nil, "k-%02d", i%keys), Value: []byte("x")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("producing over %s: %v", cfg.Security.Protocol(), err)
		}
	}

	// The processor's table topic is created by goka's topic manager
	// (kgoka's, on kadm), so that path is exercised too.
	proc, err := goka.NewProcessor(cfg.Brokers, goka.DefineGroup(group,
		goka.Input(goka.Stream(input), new(codec.Bytes), func(ctx goka.Context, _ any) {
			n, _ := ctx.Value().(int64)
			ctx.SetValue(n + 1)
		}),
		goka.Persist(new(codec.Int64)),
	), append(cfg.ProcessorOptions(), cfg.Fence(nil).ProcessorOptions()...)...) // fenced, as topologies builds them: its dialer wraps TLS
	if err != nil {
		t.Fatalf("creating processor: %v", err)
	}
	pctx, stopProc := context.WithCancel(ctx)
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(pctx) }()
	defer func() {
		stopProc()
		if err := <-procDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("processor: %v", err)
		}
	}()

	if err := proc.WaitForReadyContext(ctx); err != nil {
		t.Fatalf("processor not ready: %v", err)
	}

	var clients Clients
	defer clients.Close()
	view, err := goka.NewView(cfg.Brokers, goka.GroupTable(group), new(codec.Int64), cfg.ViewOptions(&clients)...)
	if err != nil {
		t.Fatalf("creating view: %v", err)
	}
	vctx, stopView := context.WithCancel(ctx)
	viewDone := make(chan error, 1)
	go func() { viewDone <- view.Run(vctx) }()
	defer func() {
		stopView()
		if err := <-viewDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("view: %v", err)
		}
	}()
	for !view.Recovered() {
		select {
		case <-ctx.Done():
			t.Fatal("the view did not recover")
		case <-time.After(20 * time.Millisecond):
		}
	}

	for {
		complete := true
		for k := range keys {
			v, err := view.Get(fmt.Sprintf("k-%02d", k))
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := v.(int64); n != perKey {
				if n > perKey {
					t.Fatalf("k-%02d counted %d times, want %d", k, n, perKey)
				}
				complete = false
			}
		}
		if complete {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the view did not see every count through the SASL_SSL broker in time")
		case err := <-procDone:
			procDone <- err
			t.Fatalf("processor stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkWrongPassword: a franz-go client and a goka view both refuse, with an error that
// names the authentication failure when clear (Kafka answers
// SASL_AUTHENTICATION_FAILED; kfake just closes the connection).
func checkWrongPassword(t *testing.T, cfg *Config, clear bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cfg.Ping(ctx)
	if err == nil {
		t.Fatal("franz-go: a wrong password connected")
	}
	if !strings.Contains(err.Error(), cfg.Security.Username) || clear && !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("franz-go: unclear error for a wrong password: %v", err)
	}
	if strings.Contains(err.Error(), cfg.Security.Password.Reveal()) {
		t.Fatalf("the error reveals the password: %v", err)
	}
	t.Logf("franz-go, wrong password: %v", err)

	var clients Clients
	defer clients.Close()
	_, err = goka.NewView(cfg.Brokers, goka.Table("secure-wrong-password-table"), new(codec.Int64), cfg.ViewOptions(&clients)...)
	if err == nil {
		t.Fatal("goka (kgoka): a view with a wrong password was created")
	}
	if clear && !strings.Contains(strings.ToLower(err.Error()), "authentication") {
		t.Fatalf("goka (kgoka): unclear error for a wrong password: %v", err)
	}
	t.Logf("goka (kgoka), wrong password: %v", err)
}

// SCRAM-SHA-256 authenticates too, on both stacks (a connection each).
func TestSecureBrokerScramSHA256(t *testing.T) {
	env := secureBroker(t)
	cfg := &Config{
		Brokers: env.brokers,
		Security: Security{CAFile: env.caFile, SASLMechanism: SASLScramSHA256, Username: env.scramUser,
			Password: Secret(env.scramPassword)},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cfg.Ping(ctx); err != nil {
		t.Fatalf("franz-go: %v", err)
	}
	client, err := sarama.NewClient(cfg.Brokers, cfg.Sarama())
	if err != nil {
		t.Fatalf("sarama: %v", err)
	}
	defer client.Close()
	if len(client.Brokers()) == 0 {
		t.Fatal("sarama: no brokers in the metadata")
	}
}

// A client that trusts another CA refuses the broker's certificate.
func TestSecureBrokerRejectsUnknownCA(t *testing.T) {
	env := secureBroker(t)
	cfg := &Config{
		Brokers: env.brokers,
		Security: Security{TLS: true, SASLMechanism: SASLPlain, Username: env.plainUser,
			Password: Secret(env.plainPassword)}, // system roots: the test CA is not among them
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cfg.Ping(ctx)
	if err == nil {
		t.Fatal("connected although the broker's CA is not trusted")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unclear error for an untrusted broker certificate: %v", err)
	}
	t.Logf("unknown CA: %v", err)
}
