package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The same end-to-end path as TestSecureBrokerEndToEnd, on an in-process
// kfake cluster with TLS and SASL, so that it runs in every `go test` (no
// Java): both client stacks authenticate with PLAIN and SCRAM-SHA-512 over
// TLS, a goka processor and view work through it, and a wrong password fails
// on both (kfake closes the connection instead of answering
// SASL_AUTHENTICATION_FAILED, so the message is checked on real Kafka only).
func TestSecurityOnKfake(t *testing.T) {
	dir := t.TempDir()
	caFile, serverTLS := writeServerPKI(t, dir)
	const plainPass, scramPass = "kfake-plain-Pa55", "kfake-scram-Pa55"
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
		kfake.EnableSASL(),
		kfake.Superuser(SASLPlain, "plain-user", plainPass),
		kfake.Superuser(SASLScramSHA512, "scram-user", scramPass),
		kfake.TLS(serverTLS),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct{ mech, user, pass string }{
		{SASLPlain, "plain-user", plainPass},
		{SASLScramSHA512, "scram-user", scramPass},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			cfg := &Config{
				Brokers:  c.ListenAddrs(),
				StateDir: t.TempDir(),
				Security: Security{CAFile: caFile, SASLMechanism: tc.mech, Username: tc.user, Password: Secret(tc.pass)},
			}
			cfg.Defaults()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			runSecurePipeline(t, cfg)
			wrong := *cfg
			wrong.Security.Password = "wrong"
			if err := wrong.Validate(); err != nil {
				t.Fatal(err)
			}
			checkWrongPassword(t, &wrong, false)
		})
	}
}

// writeServerPKI writes a CA (caFile) and returns a server TLS config for
// 127.0.0.1 signed by it.
func writeServerPKI(t *testing.T, dir string) (caFile string, server *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake test CA"},
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
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "kfake-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
}
