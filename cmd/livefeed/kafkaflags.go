package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/livefeed/livefeed/broker"
)

// kafkaFlags are the --kafka-* security flags. The password never has a
// flag default (-h would print it): it comes from --kafka-password, or else
// LIVEFEED_KAFKA_PASSWORD, or --kafka-password-file (a mounted secret).
type kafkaFlags struct {
	password     string
	passwordFile string
}

func (k *kafkaFlags) declare(fs *flag.FlagSet, sec *broker.Security) {
	fs.BoolVar(&sec.TLS, "kafka-tls", false, "connect to Kafka over TLS (implied by the other --kafka-tls-*/--kafka-ca-file/--kafka-cert-file flags)")
	fs.StringVar(&sec.CAFile, "kafka-ca-file", "", "PEM file of the CAs that sign the brokers' certificates (empty: system roots)")
	fs.StringVar(&sec.CertFile, "kafka-cert-file", "", "PEM client certificate for mutual TLS (with --kafka-key-file)")
	fs.StringVar(&sec.KeyFile, "kafka-key-file", "", "PEM client key for mutual TLS")
	fs.BoolVar(&sec.InsecureSkipVerify, "kafka-tls-insecure-skip-verify", false, "accept any broker certificate (tests only)")
	fs.StringVar(&sec.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL); Confluent Cloud: PLAIN with --kafka-tls")
	fs.StringVar(&sec.Username, "kafka-username", "", "SASL username (Confluent Cloud: the API key)")
	fs.StringVar(&k.password, "kafka-password", "", "SASL password (Confluent Cloud: the API secret); prefer LIVEFEED_KAFKA_PASSWORD or --kafka-password-file, a flag shows in the process list")
	fs.StringVar(&k.passwordFile, "kafka-password-file", "", "file holding the SASL password (e.g. a mounted Kubernetes secret)")
}

// resolve sets the password from the flag, the environment or the file.
func (k *kafkaFlags) resolve(fs *flag.FlagSet, sec *broker.Security) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pw, fromEnv := os.LookupEnv("LIVEFEED_KAFKA_PASSWORD")
	if set["kafka-password"] {
		pw, fromEnv = k.password, false
	}
	if k.passwordFile != "" {
		if set["kafka-password"] || fromEnv {
			return errors.New("give the kafka password once: --kafka-password (or LIVEFEED_KAFKA_PASSWORD) or --kafka-password-file")
		}
		b, err := os.ReadFile(k.passwordFile)
		if err != nil {
			return fmt.Errorf("--kafka-password-file: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return fmt.Errorf("--kafka-password-file: %s is empty", k.passwordFile)
		}
	}
	sec.Password = broker.Secret(pw)
	k.password = ""
	return nil
}
