package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

const testPassword = "s3cr3t-Pa55word-4711"

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(testPassword)
	sec := Security{TLS: true, SASLMechanism: "scram-sha-512", Username: "alice", Password: s}
	cfg := Config{Brokers: []string{"b:9093"}, Security: sec}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, sec), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	outs = append(outs, fmt.Sprint(s, sec, cfg), fmt.Sprintln(s, sec))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	} {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Debug("kafka", "password", s, "security", sec, "config", cfg, "config_ptr", &cfg, "any", any(sec))
		outs = append(outs, buf.String())
	}
	j, err := json.Marshal(sec)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	for _, o := range outs {
		if strings.Contains(o, testPassword) || strings.Contains(o, fmt.Sprintf("%x", testPassword)) {
			t.Fatalf("password printed: %s", o)
		}
	}
	// The redacted form is there (so the check above looked at real output).
	if got := fmt.Sprint(sec); !strings.Contains(got, "password=[REDACTED]") || !strings.Contains(got, `username="alice"`) {
		t.Fatalf("Security.String() = %s", got)
	}
	if s.Reveal() != testPassword {
		t.Fatal("Reveal lost the value")
	}
	if fmt.Sprint(Secret("")) != "" {
		t.Fatal("an empty secret should print empty, showing that none is set")
	}
}

func TestSecurityValidate(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sec     Security
		wantErr string
	}{
		{"plaintext", Security{}, ""},
		{"plain over tls, system roots", Security{TLS: true, SASLMechanism: "plain", Username: "key", Password: "secret"}, ""},
		{"scram-sha-512 with CA", Security{CAFile: caFile, SASLMechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}, ""},
		{"scram-sha-256", Security{SASLMechanism: "SCRAM-SHA-256", Username: "u", Password: "p"}, ""},
		{"mutual tls", Security{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, ""},
		{"unknown mechanism", Security{SASLMechanism: "GSSAPI", Username: "u", Password: "p"}, `unknown SASL mechanism "GSSAPI"`},
		{"no username", Security{SASLMechanism: "PLAIN", Password: "p"}, "SASL PLAIN needs a username"},
		{"no password", Security{SASLMechanism: "SCRAM-SHA-512", Username: "u"}, "SASL SCRAM-SHA-512 needs a password"},
		{"credentials without mechanism", Security{Username: "u", Password: "p"}, "without a SASL mechanism"},
		{"cert without key", Security{CertFile: certFile}, "both a cert file and a key file"},
		{"missing CA file", Security{CAFile: filepath.Join(dir, "nope.pem")}, "reading kafka CA file"},
		{"CA file without PEM", Security{CAFile: notPEM}, "holds no PEM certificate"},
		{"key does not match", Security{CertFile: certFile, KeyFile: caFile}, "loading kafka client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := tc.sec
			sec.Password = Secret(string(sec.Password))
			err := sec.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSecurityProtocol(t *testing.T) {
	for _, tc := range []struct {
		sec  Security
		want string
	}{
		{Security{}, "PLAINTEXT"},
		{Security{TLS: true}, "SSL"},
		{Security{CAFile: "ca.pem"}, "SSL"},
		{Security{SASLMechanism: "PLAIN"}, "SASL_PLAINTEXT"},
		{Security{TLS: true, SASLMechanism: "scram-sha-512"}, "SASL_SSL"},
	} {
		if got := tc.sec.Protocol(); got != tc.want {
			t.Errorf("%+v: protocol %s, want %s", tc.sec, got, tc.want)
		}
	}
}

// Both client stacks get the settings: sarama's config validates and
// carries TLS and SASL, franz-go gets a TLS dialer and a SASL mechanism.
func TestSecurityAppliesToBothClients(t *testing.T) {
	caFile, _, _ := writeTestPKI(t, t.TempDir())
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		cfg := &Config{Brokers: []string{"127.0.0.1:1"}, Security: Security{
			CAFile: caFile, SASLMechanism: strings.ToLower(mech), Username: "u", Password: testPassword}}
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		sc := cfg.Sarama()
		if err := sc.Validate(); err != nil {
			t.Fatalf("%s: sarama rejects the config: %v", mech, err)
		}
		if !sc.Net.TLS.Enable || sc.Net.TLS.Config == nil || sc.Net.TLS.Config.RootCAs == nil {
			t.Fatalf("%s: sarama TLS not set with the CA", mech)
		}
		if !sc.Net.SASL.Enable || string(sc.Net.SASL.Mechanism) != mech || sc.Net.SASL.User != "u" || sc.Net.SASL.Password != testPassword {
			t.Fatalf("%s: sarama SASL = %+v", mech, sc.Net.SASL)
		}
		if mech != SASLPlain && sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
			t.Fatalf("%s: no SCRAM client", mech)
		}
		// franz-go: seed brokers, acks, delivery timeout + TLS dialer + SASL.
		if n := len(cfg.KgoOpts()); n != 5 {
			t.Fatalf("%s: %d franz-go options, want seed brokers, acks, delivery timeout, TLS and SASL", mech, n)
		}
		if m := cfg.Security.saslMechanism(); m == nil || m.Name() != mech {
			t.Fatalf("%s: franz-go mechanism %v", mech, m)
		}
	}
	plain := &Config{Brokers: []string{"127.0.0.1:1"}}
	plain.Defaults()
	if sc := plain.Sarama(); sc.Net.TLS.Enable || sc.Net.SASL.Enable {
		t.Fatal("PLAINTEXT config enables TLS or SASL")
	}
	if n := len(plain.KgoOpts()); n != 3 {
		t.Fatalf("PLAINTEXT: %d franz-go options, want only the seed brokers, acks and delivery timeout", n)
	}
}

// Without Validate, a CA file that cannot be loaded makes every handshake
// fail with the loading error; it never falls back to unverified TLS.
func TestUnloadableTLSFailsHandshake(t *testing.T) {
	sec := Security{CAFile: filepath.Join(t.TempDir(), "missing.pem")}
	cfg := sec.dialTLS()
	if cfg == nil || cfg.VerifyConnection == nil {
		t.Fatalf("want a config that refuses every connection, got %+v", cfg)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err == nil || !strings.Contains(err.Error(), "reading kafka CA file") {
		t.Fatalf("VerifyConnection = %v", err)
	}
}

// The SCRAM adapter speaks sarama's SCRAMClient protocol: Step("") gives the
// client-first message, not done; a malformed server-first message fails.
func TestScramClientAdapter(t *testing.T) {
	var c sarama.SCRAMClient = &scramClient{mech: SASLScramSHA512}
	if err := c.Begin("alice", testPassword, ""); err != nil {
		t.Fatal(err)
	}
	first, err := c.Step("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "n,,n=alice,r=") || c.Done() {
		t.Fatalf("client-first %q, done %v", first, c.Done())
	}
	if _, err := c.Step("garbage"); err == nil {
		t.Fatal("a malformed server-first message was accepted")
	}
	if c.Done() {
		t.Fatal("done after a failed step")
	}
}

// writeTestPKI writes a CA and a client certificate + key signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", der), write("client.key", "PRIVATE KEY", keyDER)
}
