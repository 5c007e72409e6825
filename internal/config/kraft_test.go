package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// kraftKeys builds overrides from "key=value" pairs.
func kraftKeys(kv ...string) map[string]string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// TestKRaftValid: the KRaft configurations Vltava runs, and what they resolve to.
func TestKRaftValid(t *testing.T) {
	cases := []struct {
		name      string
		overrides map[string]string
		voters    map[int32]string
		broker    bool
		ctrl      bool
		interName string
		metaDir   string
	}{
		{name: "default: a quorum of this node alone", voters: map[int32]string{1: ""}, broker: true, ctrl: true, interName: "PLAINTEXT", metaDir: "./data"},
		{name: "only voter, no controller listener needed", overrides: kraftKeys("node.id=3", "controller.quorum.voters=3@localhost:9093"),
			voters: map[int32]string{3: "localhost:9093"}, broker: true, ctrl: true, interName: "PLAINTEXT", metaDir: "./data"},
		{name: "three combined voters", overrides: kraftKeys("node.id=2", "controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093",
			"listeners=PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names=CONTROLLER", "log.dirs=/d1,/d2", "metadata.log.dir=/meta"),
			voters: map[int32]string{1: "h1:9093", 2: "h2:9093", 3: "h3:9093"}, broker: true, ctrl: true, interName: "PLAINTEXT", metaDir: "/meta"},
		{name: "controller only", overrides: kraftKeys("process.roles=controller", "node.id=1", "controller.quorum.voters=1@h1:9093,2@h2:9093",
			"listeners=CONTROLLER://:9093", "controller.listener.names=CONTROLLER"),
			voters: map[int32]string{1: "h1:9093", 2: "h2:9093"}, ctrl: true, metaDir: "./data"},
		{name: "broker only, an observer", overrides: kraftKeys("process.roles=broker", "node.id=4", "controller.quorum.voters=1@h1:9093,2@h2:9093",
			"listeners=INTERNAL://:9094,EXTERNAL://:9092", "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"controller.listener.names=CONTROLLER", "inter.broker.listener.name=INTERNAL"),
			voters: map[int32]string{1: "h1:9093", 2: "h2:9093"}, broker: true, interName: "INTERNAL", metaDir: "./data"},
		{name: "bootstrap servers at its own controller listener", overrides: kraftKeys("listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
			"controller.listener.names=CONTROLLER", "controller.quorum.bootstrap.servers=localhost:9093"),
			voters: map[int32]string{1: ":9093"}, broker: true, ctrl: true, interName: "PLAINTEXT", metaDir: "./data"},
		{name: "inter-broker listener defaults to the first client listener", overrides: kraftKeys("listeners=A://:1,B://:2", "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT"),
			voters: map[int32]string{1: ""}, broker: true, ctrl: true, interName: "A", metaDir: "./data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Load("", nil, tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.QuorumVoters(); !reflect.DeepEqual(got, tc.voters) {
				t.Errorf("voters %v, want %v", got, tc.voters)
			}
			if b.IsBroker() != tc.broker || b.IsController() != tc.ctrl {
				t.Errorf("broker %v controller %v, want %v %v", b.IsBroker(), b.IsController(), tc.broker, tc.ctrl)
			}
			if b.InterBrokerListenerName != tc.interName || b.MetadataLogDir != tc.metaDir {
				t.Errorf("inter.broker.listener.name %q metadata.log.dir %q, want %q %q", b.InterBrokerListenerName, b.MetadataLogDir, tc.interName, tc.metaDir)
			}
		})
	}
}

// TestKRaftInvalid: each configuration a node cannot run with is refused at start with
// a message that names the key to change.
func TestKRaftInvalid(t *testing.T) {
	const ctl = "listeners=PLAINTEXT://:9092,CONTROLLER://:9093"
	cases := []struct {
		name      string
		overrides map[string]string
		key, want string
	}{
		{"node id 0", kraftKeys("node.id=0"), "node.id", "reserves it"},
		{"broker.id 0", kraftKeys("broker.id=0"), "broker.id", "reserves it"},
		{"voter entry without id", kraftKeys("controller.quorum.voters=h:9093"), "controller.quorum.voters", `entry "h:9093" is not id@host:port`},
		{"voter id 0", kraftKeys("controller.quorum.voters=0@h:9093"), "controller.quorum.voters", "must be at least 1"},
		{"voter without port", kraftKeys("controller.quorum.voters=1@h"), "controller.quorum.voters", "expected host:port"},
		{"voter port 0", kraftKeys("controller.quorum.voters=1@h:0"), "controller.quorum.voters", "from 1 to 65535"},
		{"voter twice", kraftKeys("controller.quorum.voters=1@h:1,1@h:2"), "controller.quorum.voters", "node 1 is listed twice"},
		{"controller not a voter", kraftKeys("controller.quorum.voters=2@h:9093"), "controller.quorum.voters", "is a controller (process.roles=broker,controller) but not one of the voters"},
		{"several voters, no controller listener names", kraftKeys("controller.quorum.voters=1@h1:9093,2@h2:9093"), "controller.listener.names", "needs a controller listener"},
		{"several voters, controller listener not bound", kraftKeys("controller.quorum.voters=1@h1:9093,2@h2:9093", "controller.listener.names=CONTROLLER"), "listeners", "needs a listener named in controller.listener.names (CONTROLLER)"},
		{"bootstrap servers of other nodes", kraftKeys(ctl, "controller.listener.names=CONTROLLER", "controller.quorum.bootstrap.servers=other:9999"), "controller.quorum.bootstrap.servers", "other:9999 is not one of this node's controller listeners"},
		{"bad bootstrap server", kraftKeys("controller.quorum.bootstrap.servers=other"), "controller.quorum.bootstrap.servers", "expected host:port"},
		{"broker only without voters", kraftKeys("process.roles=broker", "controller.listener.names=CONTROLLER"), "controller.quorum.voters", "needs the quorum's voters"},
		{"broker only with bootstrap servers alone", kraftKeys("process.roles=broker", "controller.listener.names=CONTROLLER", "controller.quorum.bootstrap.servers=h:9093"), "controller.quorum.voters", "not supported yet"},
		{"broker only as a voter", kraftKeys("process.roles=broker", "controller.quorum.voters=1@h:9093", "controller.listener.names=CONTROLLER"), "controller.quorum.voters", "cannot be a voter"},
		{"broker only without controller listener names", kraftKeys("process.roles=broker", "controller.quorum.voters=2@h:9093"), "controller.listener.names", "needs the name of the controllers' listener"},
		{"broker only binding a controller listener", kraftKeys("process.roles=broker", "controller.quorum.voters=2@h:9093", "controller.listener.names=CONTROLLER", ctl), "controller.listener.names", "must not bind a controller listener"},
		{"controller only with a client listener", kraftKeys("process.roles=controller", "controller.quorum.voters=1@h:1,2@h:2", "controller.listener.names=CONTROLLER", ctl), "listeners", "PLAINTEXT is not"},
		{"controller only without a controller listener", kraftKeys("process.roles=controller", "controller.quorum.voters=1@h:1,2@h:2", "controller.listener.names=CONTROLLER", "listeners=CONTROLLER2://:1", "listener.security.protocol.map=CONTROLLER2:PLAINTEXT"), "listeners", "CONTROLLER2 is not"},
		{"inter-broker listener unknown", kraftKeys("inter.broker.listener.name=INTERNAL"), "inter.broker.listener.name", "INTERNAL is not one of the listeners (PLAINTEXT)"},
		{"inter-broker listener is the controller's", kraftKeys(ctl, "controller.listener.names=CONTROLLER", "inter.broker.listener.name=CONTROLLER"), "inter.broker.listener.name", "is a controller listener"},
		{"empty metadata.log.dir", kraftKeys("metadata.log.dir= "), "metadata.log.dir", "must name a directory"},
		{"heartbeat not below the session timeout", kraftKeys("broker.heartbeat.interval.ms=9000"), "broker.heartbeat.interval.ms", "less than broker.session.timeout.ms (9000)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("", nil, tc.overrides)
			if err == nil {
				t.Fatalf("Load succeeded, want an error about %s", tc.key)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one naming %s and saying %q", err, tc.key, tc.want)
			}
		})
	}
}
