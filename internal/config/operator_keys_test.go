package config

import (
	"strings"
	"testing"
)

// Vltava's operator keys: their defaults, validation, and IsSet for the HTTP listener,
// whose default may be taken while a value the operator set must bind.
func TestOperatorKeys(t *testing.T) {
	b, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"vltava.http.listener": "127.0.0.1:9404", "vltava.metrics.partition.series.enable": "true",
		"vltava.metrics.topic.series.max": "1000", "vltava.metrics.consumer.lag.series.max": "10000",
		"vltava.request.slow.log.threshold.ms": "1000", "vltava.log.format": "text"} {
		if b.Values[k] != want {
			t.Errorf("%s = %q, want %q", k, b.Values[k], want)
		}
		if b.IsSet(k) {
			t.Errorf("%s reported set at its default", k)
		}
	}
	for _, v := range []string{"", "none", "127.0.0.1:0", ":9404", "[::1]:9404"} {
		b, err := Load("", nil, map[string]string{"vltava.http.listener": v})
		if err != nil {
			t.Errorf("vltava.http.listener=%q: %v", v, err)
		} else if !b.IsSet("vltava.http.listener") {
			t.Errorf("vltava.http.listener=%q not reported set", v)
		}
	}
	for k, v := range map[string]string{"vltava.http.listener": "9404", "vltava.log.format": "xml", "vltava.metrics.topic.series.max": "-1"} {
		if _, err := Load("", nil, map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v, want an error naming the key", k, v, err)
		}
	}
	if _, err := Load("", nil, map[string]string{"vltava.http.listener": "host:99999"}); err == nil {
		t.Error("port 99999 accepted")
	}
	for k, want := range map[string]bool{"ssl.keystore.password": true, "sasl.jaas.config": true, "ssl.truststore.password": true,
		"retention.ms": false, "log.retention.ms": false, "some.secret.key": true} {
		if Sensitive(k) != want {
			t.Errorf("Sensitive(%s) = %v", k, !want)
		}
	}
}
