package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms livefeed supports.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Secret is a string that never prints: fmt (every verb), slog and JSON show
// "[REDACTED]" (or "" when empty). Reveal returns the value.
type Secret string

const redacted = "[REDACTED]"

func (s Secret) display() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Reveal returns the secret's value, for the client that needs it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string { return s.display() }

// GoString implements fmt.GoStringer (%#v) without revealing the value.
func (s Secret) GoString() string { return `"` + s.display() + `"` }

// Format implements fmt.Formatter: every verb (%d and %x included) prints the
// redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.display()))
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.display()) }

// MarshalText implements encoding.TextMarshaler (JSON and friends).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.display()), nil }

// Security is how livefeed secures its Kafka connections: TLS (server
// verification against a CA, optional client certificate) and SASL (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512). The same settings apply to both client
// stacks: sarama (goka's processors, views, emitters) and franz-go (topic
// creation, the simulator, the state guard). The zero value is PLAINTEXT.
//
// Confluent Cloud and most managed Kafka services use SASL PLAIN over TLS,
// with an API key as Username and its secret as Password, verified against
// the system's roots (no CAFile).
type Security struct {
	// TLS encrypts the connections. Setting CAFile, CertFile, KeyFile or
	// InsecureSkipVerify turns it on too.
	TLS bool
	// CAFile is a PEM file of the CAs that sign the brokers' certificates.
	// Empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and key (mutual
	// TLS); both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any broker certificate. For tests only.
	InsecureSkipVerify bool
	// SASLMechanism is "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (case-insensitive).
	SASLMechanism string
	// Username and Password are the SASL credentials (for Confluent Cloud:
	// API key and secret).
	Username string
	Password Secret

	// tlsConfig is loaded once by Validate.
	tlsConfig *tls.Config
}

// TLSEnabled reports whether connections use TLS.
func (s *Security) TLSEnabled() bool {
	return s.TLS || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.InsecureSkipVerify
}

// Mechanism is the normalised SASL mechanism ("" for none).
func (s *Security) Mechanism() string { return strings.ToUpper(strings.TrimSpace(s.SASLMechanism)) }

// Enabled reports whether any security setting is on.
func (s *Security) Enabled() bool { return s.TLSEnabled() || s.Mechanism() != "" }

// Protocol is Kafka's name for the security protocol in use: PLAINTEXT, SSL,
// SASL_PLAINTEXT or SASL_SSL.
func (s *Security) Protocol() string {
	switch {
	case s.TLSEnabled() && s.Mechanism() != "":
		return "SASL_SSL"
	case s.TLSEnabled():
		return "SSL"
	case s.Mechanism() != "":
		return "SASL_PLAINTEXT"
	default:
		return "PLAINTEXT"
	}
}

// String describes the settings without the password.
func (s Security) String() string {
	var b strings.Builder
	b.WriteString(s.Protocol())
	if m := s.Mechanism(); m != "" {
		fmt.Fprintf(&b, " mechanism=%s username=%q password=%s", m, s.Username, s.Password.display())
	}
	if s.TLSEnabled() {
		ca := s.CAFile
		if ca == "" {
			ca = "system roots"
		}
		fmt.Fprintf(&b, " ca=%q", ca)
		if s.CertFile != "" {
			fmt.Fprintf(&b, " cert=%q", s.CertFile)
		}
		if s.InsecureSkipVerify {
			b.WriteString(" insecure-skip-verify")
		}
	}
	return b.String()
}

// LogValue implements slog.LogValuer: the settings without the password.
func (s Security) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("protocol", s.Protocol())}
	if m := s.Mechanism(); m != "" {
		attrs = append(attrs, slog.String("sasl_mechanism", m), slog.String("username", s.Username),
			slog.String("password", s.Password.display()))
	}
	if s.TLSEnabled() {
		attrs = append(attrs, slog.String("ca_file", s.CAFile), slog.String("cert_file", s.CertFile),
			slog.Bool("insecure_skip_verify", s.InsecureSkipVerify))
	}
	return slog.GroupValue(attrs...)
}

// Validate rejects unusable settings and loads the TLS files, so that a bad
// CA or key file fails at start with its path, not at the first connection.
func (s *Security) Validate() error {
	var errs []error
	switch m := s.Mechanism(); m {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("kafka username/password given without a SASL mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.Username == "" {
			errs = append(errs, fmt.Errorf("SASL %s needs a username", m))
		}
		if s.Password == "" {
			errs = append(errs, fmt.Errorf("SASL %s needs a password", m))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.SASLMechanism))
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, errors.New("a TLS client certificate needs both a cert file and a key file"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.tlsConfig = nil
	if s.TLSEnabled() {
		cfg, err := s.loadTLS()
		if err != nil {
			return err
		}
		s.tlsConfig = cfg
	}
	return nil
}

func (s *Security) loadTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading kafka CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka CA file %s holds no PEM certificate", s.CAFile)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading kafka client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// dialTLS returns the TLS configuration to dial with (nil: no TLS). If Validate
// did not run, it loads the files now; if that fails, every handshake fails
// with the loading error rather than falling back to anything weaker.
func (s *Security) dialTLS() *tls.Config {
	if !s.TLSEnabled() {
		return nil
	}
	if s.tlsConfig != nil {
		return s.tlsConfig.Clone()
	}
	cfg, err := s.loadTLS()
	if err != nil {
		return &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, //nolint:gosec // every connection is refused by VerifyConnection
			VerifyConnection:   func(tls.ConnectionState) error { return err },
		}
	}
	return cfg
}

// applySarama sets TLS and SASL on a sarama configuration.
func (s *Security) applySarama(cfg *sarama.Config) {
	if t := s.dialTLS(); t != nil {
		cfg.Net.TLS.Enable = true
		cfg.Net.TLS.Config = t
	}
	m := s.Mechanism()
	if m == "" {
		return
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Version = sarama.SASLHandshakeV1
	cfg.Net.SASL.User = s.Username
	cfg.Net.SASL.Password = s.Password.Reveal()
	switch m {
	case SASLPlain:
		cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
	case SASLScramSHA256:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mech: m} }
	case SASLScramSHA512:
		cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{mech: m} }
	}
}

// kgoOpts are the franz-go options for TLS and SASL.
func (s *Security) kgoOpts() []kgo.Opt {
	var opts []kgo.Opt
	if t := s.dialTLS(); t != nil {
		opts = append(opts, kgo.DialTLSConfig(t))
	}
	if mech := s.saslMechanism(); mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts
}

func (s *Security) saslMechanism() sasl.Mechanism {
	user, pass := s.Username, s.Password.Reveal()
	switch s.Mechanism() {
	case SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// scramClient adapts franz-go's SCRAM implementation to sarama's SCRAMClient,
// so both client stacks share one SCRAM implementation (and livefeed needs
// no second SCRAM library).
type scramClient struct {
	mech    string
	auth    sasl.Mechanism
	session sasl.Session
	started bool
	done    bool
}

func (c *scramClient) Begin(user, password, authzID string) error {
	a := scram.Auth{Zid: authzID, User: user, Pass: password}
	switch c.mech {
	case SASLScramSHA256:
		c.auth = a.AsSha256Mechanism()
	case SASLScramSHA512:
		c.auth = a.AsSha512Mechanism()
	default:
		return fmt.Errorf("unsupported SCRAM mechanism %q", c.mech)
	}
	c.session, c.started, c.done = nil, false, false
	return nil
}

// Step is called first with "" (it returns the client-first message), then
// with each server message; after the server-final message Done is true.
func (c *scramClient) Step(challenge string) (string, error) {
	if !c.started {
		c.started = true
		session, first, err := c.auth.Authenticate(context.Background(), "")
		if err != nil {
			return "", err
		}
		c.session = session
		return string(first), nil
	}
	if c.session == nil {
		return "", errors.New("SCRAM exchange not started")
	}
	done, resp, err := c.session.Challenge([]byte(challenge))
	if err != nil {
		return "", fmt.Errorf("SCRAM exchange: %w", err)
	}
	c.done = done
	return string(resp), nil
}

func (c *scramClient) Done() bool { return c.done }

// KgoOpts are the franz-go options for a client of these brokers: the seed
// brokers, TLS and SASL, and the producer settings every livefeed producer
// shares, Kafka's own defaults: acks=all, idempotent (franz-go's default,
// never disabled here), retries bounded by DeliveryTimeout only. Append
// client-specific options to them.
func (c *Config) KgoOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.RequiredAcks(kgo.AllISRAcks())}, c.Security.kgoOpts()...)
	if c.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.DeliveryTimeout))
	}
	return append(opts, extra...)
}

// Ping connects to the brokers with c's security settings and asks for the
// cluster's metadata, so that a wrong password, CA or address fails at start
// with a message that says what was tried.
func (c *Config) Ping(ctx context.Context) error {
	cl, err := kgo.NewClient(c.KgoOpts()...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("connecting to kafka %s (%s): %w", strings.Join(c.Brokers, ","), c.Security, err)
	}
	return nil
}
