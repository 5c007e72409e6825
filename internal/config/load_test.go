package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	b, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Broker{
		NodeID:                     1,
		Listeners:                  []string{"127.0.0.1:9092"},
		LogDirs:                    []string{"./data"},
		NumPartitions:              1,
		DefaultReplicationFactor:   1,
		AutoCreateTopics:           true,
		DeleteTopicEnable:          true,
		SocketRequestMaxBytes:      104857600,
		RequestTimeout:             30 * time.Second,
		GroupInitialRebalanceDelay: 3 * time.Second,
		OffsetsTopicNumPartitions:  50,
		OffsetsRetention:           7 * 24 * time.Hour,
		ConnectionsMaxIdle:         10 * time.Minute,
		MaxConnections:             2147483647,
		QueuedMaxRequests:          500,
		LogRetentionCheckInterval:  5 * time.Minute,
	}
	got := b
	if got.NodeID != want.NodeID || !reflect.DeepEqual(got.Listeners, want.Listeners) ||
		got.AdvertisedListeners != nil || !reflect.DeepEqual(got.LogDirs, want.LogDirs) ||
		got.NumPartitions != want.NumPartitions || got.DefaultReplicationFactor != want.DefaultReplicationFactor ||
		got.AutoCreateTopics != want.AutoCreateTopics || got.DeleteTopicEnable != want.DeleteTopicEnable ||
		got.Values["message.max.bytes"] != "1048588" || got.SocketRequestMaxBytes != want.SocketRequestMaxBytes ||
		got.RequestTimeout != want.RequestTimeout || got.GroupInitialRebalanceDelay != want.GroupInitialRebalanceDelay ||
		got.OffsetsTopicNumPartitions != want.OffsetsTopicNumPartitions || got.OffsetsRetention != want.OffsetsRetention ||
		got.ConnectionsMaxIdle != want.ConnectionsMaxIdle || got.MaxConnections != want.MaxConnections ||
		got.QueuedMaxRequests != want.QueuedMaxRequests || got.LogRetentionCheckInterval != want.LogRetentionCheckInterval {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if b.Values["log.retention.hours"] != "168" {
		t.Errorf("Values[log.retention.hours] = %q, want 168", b.Values["log.retention.hours"])
	}
	if _, ok := b.Values["log.retention.ms"]; ok {
		t.Errorf("log.retention.ms has a null default and must be absent from Values")
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, "num.partitions=2\nmessage.max.bytes=1000\nlog.dirs=/a,/b\nnode.id=7\n")
	env := []string{
		"VLTAVA_MESSAGE_MAX_BYTES=2000",
		"VLTAVA_NUM_IO_THREADS=4",
		"VLTAVA_BROKERS=localhost:9092", // a tool variable, not config
		"PATH=/usr/bin",
		"NUM_PARTITIONS=9", // no prefix: ignored
	}
	b, err := Load(path, env, map[string]string{"num.io.threads": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if b.NumPartitions != 2 {
		t.Errorf("NumPartitions = %d, want 2 from the file", b.NumPartitions)
	}
	if b.Values["message.max.bytes"] != "2000" {
		t.Errorf("message.max.bytes = %s, want 2000 from env over file", b.Values["message.max.bytes"])
	}
	if b.Values["num.io.threads"] != "5" {
		t.Errorf("num.io.threads = %q, want 5 from overrides over env", b.Values["num.io.threads"])
	}
	if !reflect.DeepEqual(b.LogDirs, []string{"/a", "/b"}) || b.NodeID != 7 {
		t.Errorf("LogDirs %v NodeID %d", b.LogDirs, b.NodeID)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name      string
		file      string
		env       []string
		overrides map[string]string
		want      string
	}{
		{name: "unknown file key", file: "# c\nnum.partitions=1\nretention.ms=5\n", want: "line 3: unknown configuration \"retention.ms\" (retention.ms is a topic config; its broker default is log.retention.ms)"},
		{name: "unknown env key", env: []string{"VLTAVA_NO_SUCH_KEY=1"}, want: "environment variable VLTAVA_NO_SUCH_KEY: unknown configuration \"no.such.key\""},
		{name: "unknown override", overrides: map[string]string{"bogus": "1"}, want: "override: unknown configuration \"bogus\""},
		{name: "not a number", overrides: map[string]string{"num.partitions": "x"}, want: `override: invalid value "x" for configuration num.partitions: not a number`},
		{name: "bad value in file", file: "a.b=1\n", want: "unknown configuration \"a.b\""},
		{name: "bad value names its line", file: "# c\nnum.partitions = 0\n", want: `line 2: invalid value "0" for configuration num.partitions: must be at least 1`},
		{name: "bad value names its env var", env: []string{"VLTAVA_NUM_PARTITIONS=-3"}, want: `environment variable VLTAVA_NUM_PARTITIONS: invalid value "-3"`},
		{name: "cross-key error names its origin", env: []string{"VLTAVA_BROKER_ID=5"}, overrides: map[string]string{"node.id": "1"}, want: "environment variable VLTAVA_BROKER_ID: invalid value \"5\" for configuration broker.id: must equal node.id (1)"},
		{name: "below minimum", overrides: map[string]string{"num.partitions": "0"}, want: `invalid value "0" for configuration num.partitions: must be at least 1`},
		{name: "int overflow", overrides: map[string]string{"message.max.bytes": "3000000000"}, want: "out of range for type INT"},
		{name: "bad bool", overrides: map[string]string{"auto.create.topics.enable": "yes"}, want: "expected true or false"},
		{name: "bad roles", overrides: map[string]string{"process.roles": "broker,worker"}, want: `"worker" is not one of broker, controller`},
		{name: "node and broker id differ", overrides: map[string]string{"node.id": "1", "broker.id": "2"}, want: "must equal node.id"},
		{name: "listener no port", overrides: map[string]string{"listeners": "PLAINTEXT://localhost"}, want: "expected host:port"},
		{name: "listener bad port", overrides: map[string]string{"listeners": "localhost:70000"}, want: "port must be a number from 0 to 65535"},
		{name: "listener ssl", overrides: map[string]string{"listeners": "SSL://:9093"}, want: "only PLAINTEXT is supported"},
		{name: "listener unmapped", overrides: map[string]string{"listeners": "CLIENT://:9093"}, want: "not in listener.security.protocol.map"},
		{name: "duplicate listener", overrides: map[string]string{"listeners": "PLAINTEXT://:1,PLAINTEXT://:2"}, want: "appears twice"},
		{name: "advertised port 0", overrides: map[string]string{"advertised.listeners": "PLAINTEXT://h:0"}, want: "advertised port cannot be 0"},
		{name: "advertised all interfaces", overrides: map[string]string{"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"}, want: "not an address clients can connect to"},
		{name: "advertised empty host", overrides: map[string]string{"advertised.listeners": ":9092"}, want: "not an address clients can connect to"},
		{name: "listener on all interfaces, not advertised", overrides: map[string]string{"listeners": "PLAINTEXT://0.0.0.0:9092"}, want: "listener PLAINTEXT binds 0.0.0.0, which clients cannot connect to, and advertised.listeners does not name it: set advertised.listeners=PLAINTEXT://HOST:9092"},
		{name: "IPv6 wildcard listener, not advertised", overrides: map[string]string{"listeners": "PLAINTEXT://[::]:9092"}, want: "binds ::, which clients cannot connect to"},
		{name: "advertised unknown name", overrides: map[string]string{"advertised.listeners": "SSL://h:1"}, want: "only PLAINTEXT"},
		{name: "advertised not a listener", overrides: map[string]string{"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT", "advertised.listeners": "OTHER://h:1"}, want: "listener name OTHER is not in listeners"},
		{name: "no client listener", overrides: map[string]string{"listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"}, want: "needs at least one listener"},
		{name: "duplicate log dirs", overrides: map[string]string{"log.dirs": "/a,/b,/a"}, want: "directory /a is listed twice"},
		{name: "session timeouts", overrides: map[string]string{"group.min.session.timeout.ms": "10", "group.max.session.timeout.ms": "5"}, want: "must not exceed group.max.session.timeout.ms"},
		{name: "bad segment bytes", overrides: map[string]string{"log.segment.bytes": "1000"}, want: "must be at least 1048576"},
		{name: "bad timestamp type", overrides: map[string]string{"log.message.timestamp.type": "createtime"}, want: "must be one of CreateTime, LogAppendTime"},
		{name: "bad ratio", overrides: map[string]string{"log.cleaner.min.cleanable.ratio": "1.5"}, want: "must be between 0 and 1"},
		{name: "bad protocol map", overrides: map[string]string{"listener.security.protocol.map": "PLAINTEXT"}, want: "is not NAME:PROTOCOL"},
		{name: "empty log.dirs", overrides: map[string]string{"log.dirs": " , "}, want: "must name at least one directory"},
		{name: "bad properties escape", file: "a=\\u12x4\n", want: "properties line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			_, err := Load(path, tc.env, tc.overrides)
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if tc.file == "" && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.properties"), nil, nil); err == nil {
		t.Fatal("want error for a missing file")
	}
}

func TestLoadListeners(t *testing.T) {
	// An empty host binds every interface and, as in Kafka, advertises this machine's name.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		overrides      map[string]string
		listeners      []string
		advertised     []string
		controllerOnes []string
	}{
		{overrides: map[string]string{"listeners": "127.0.0.1:0"}, listeners: []string{"127.0.0.1:0"}},
		{overrides: map[string]string{"listeners": "plaintext://:9092"}, listeners: []string{":9092"}, advertised: []string{host + ":9092"}},
		{overrides: map[string]string{"listeners": "PLAINTEXT://[::1]:9092"}, listeners: []string{"[::1]:9092"}},
		{
			overrides:  map[string]string{"listeners": "PLAINTEXT://0.0.0.0:9092", "advertised.listeners": "PLAINTEXT://kafka.example:9092"},
			listeners:  []string{"0.0.0.0:9092"},
			advertised: []string{"kafka.example:9092"},
		},
		{
			overrides: map[string]string{
				"listeners":                      "PLAINTEXT://0.0.0.0:9092,INTERNAL://10.0.0.1:9094",
				"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
				"advertised.listeners":           "PLAINTEXT://public.example:9092",
			},
			listeners:  []string{"0.0.0.0:9092", "10.0.0.1:9094"},
			advertised: []string{"public.example:9092", "10.0.0.1:9094"},
		},
		{
			overrides:      map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"},
			listeners:      []string{":9092"},
			advertised:     []string{host + ":9092"},
			controllerOnes: []string{":9093"},
		},
		{
			overrides:  map[string]string{"listeners": "CLIENT://:9092", "listener.security.protocol.map": "CLIENT:PLAINTEXT"},
			listeners:  []string{":9092"},
			advertised: []string{host + ":9092"},
		},
	}
	for _, tc := range cases {
		b, err := Load("", nil, tc.overrides)
		if err != nil {
			t.Fatalf("%v: %v", tc.overrides, err)
		}
		if !reflect.DeepEqual(b.Listeners, tc.listeners) || !reflect.DeepEqual(b.AdvertisedListeners, tc.advertised) ||
			!reflect.DeepEqual(b.ControllerListeners, tc.controllerOnes) {
			t.Errorf("%v: listeners %v advertised %v controller %v", tc.overrides, b.Listeners, b.AdvertisedListeners, b.ControllerListeners)
		}
	}
}

func TestLoadAcceptsInapplicableKafkaKeys(t *testing.T) {
	path := writeFile(t, "metric.reporters=\nssl.keystore.location=/x\nzookeeper.connect=zk:2181\nlog.dir=/var/k\n")
	b, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Values["ssl.keystore.location"] != "/x" || !reflect.DeepEqual(b.LogDirs, []string{"/var/k"}) {
		t.Fatalf("values %v dirs %v", b.Values["ssl.keystore.location"], b.LogDirs)
	}
}

// TestLoadKafkaSingleNodeKRaft: Kafka 4's own single-node server.properties (combined
// roles, its controller listener as bootstrap server) loads as it stands.
func TestLoadKafkaSingleNodeKRaft(t *testing.T) {
	path := writeFile(t, `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
`)
	if _, err := Load(path, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBrokerIDSynonym(t *testing.T) {
	b, err := Load("", nil, map[string]string{"broker.id": "3"})
	if err != nil || b.NodeID != 3 {
		t.Fatalf("NodeID %d err %v, want 3 from broker.id", b.NodeID, err)
	}
}

func TestEnv(t *testing.T) {
	if EnvName("log.dirs") != "VLTAVA_LOG_DIRS" || EnvName("listeners") != "VLTAVA_LISTENERS" {
		t.Fatalf("EnvName: %s %s", EnvName("log.dirs"), EnvName("listeners"))
	}
	for _, name := range []string{"VLTAVA_BROKERS", "VLTAVA_CONFIG", "VLTAVA_LOG_LEVEL", "VLTAVA_E2E_BROKER", "VLTAVA_TEST_BROKERS"} {
		if !IsToolEnv(name) {
			t.Errorf("%s should be a tool variable", name)
		}
	}
	if IsToolEnv("VLTAVA_LOG_DIRS") {
		t.Errorf("VLTAVA_LOG_DIRS is configuration")
	}
	env := []string{
		"VLTAVA_LOG_DIRS=/x, /y",
		"VLTAVA_LISTENERS=PLAINTEXT://127.0.0.1:0",
		"VLTAVA_AUTO_CREATE_TOPICS_ENABLE=false",
		"VLTAVA_CONFIG=/etc/vltava.properties",
		"VLTAVA_LOG_LEVEL=debug",
		"VLTAVA_E2E_BROKER=vltava",
		"VLTAVA_TEST_LOG=1",
		"vltava_num_partitions=5", // the prefix is case-sensitive, like the key names
		"MALFORMED",
		"VLTAVA_CLUSTER_ID=abc=def", // only the first '=' separates
	}
	b, err := Load("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.LogDirs, []string{"/x", "/y"}) || !reflect.DeepEqual(b.Listeners, []string{"127.0.0.1:0"}) ||
		b.AutoCreateTopics || b.NumPartitions != 1 || b.ClusterID != "abc=def" {
		t.Fatalf("from env: dirs %v listeners %v autocreate %v partitions %d cluster %q", b.LogDirs, b.Listeners, b.AutoCreateTopics, b.NumPartitions, b.ClusterID)
	}
}

func TestParseOverrides(t *testing.T) {
	got, err := ParseOverrides([]string{"num.partitions=3", "listeners=PLAINTEXT://:0", "num.partitions=4", "cluster.id="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"num.partitions": "4", "listeners": "PLAINTEXT://:0", "cluster.id": ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := ParseOverrides([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLoadFileFull(t *testing.T) {
	// A Kafka-style server.properties: comments, colon separators, continuations,
	// keys Vltava accepts but does not use.
	path := writeFile(t, `# Kafka server.properties
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://localhost:0,CONTROLLER://localhost:0
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL
num.network.threads=3
socket.request.max.bytes : 1048576
log.dirs=/tmp/a,\
         /tmp/b
num.partitions=1
offsets.topic.replication.factor=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
metric.reporters=
`)
	b, err := Load(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.SocketRequestMaxBytes != 1048576 || !reflect.DeepEqual(b.LogDirs, []string{"/tmp/a", "/tmp/b"}) ||
		!reflect.DeepEqual(b.Listeners, []string{"localhost:0"}) || !reflect.DeepEqual(b.ControllerListeners, []string{"localhost:0"}) {
		t.Fatalf("loaded %+v", b)
	}
}

func TestBrokerIDUnset(t *testing.T) {
	b, err := Load("", nil, map[string]string{"broker.id": "-1", "node.id": "4"})
	if err != nil || b.NodeID != 4 {
		t.Fatalf("broker.id=-1 must mean unset: node %d err %v", b.NodeID, err)
	}
}
