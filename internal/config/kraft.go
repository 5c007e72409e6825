package config

// KRaft: a node's roles, the metadata quorum it belongs to, and how it reaches it, with
// Kafka's keys and, where Kafka has them, Kafka's rules (KafkaConfig's KRaft checks):
//
//   - process.roles: broker, controller, or both (combined mode, Vltava's default).
//   - controller.quorum.voters: the static quorum, id@host:port per voter, host:port
//     being the voter's controller listener. Unset on a controller, the node is a quorum
//     of one: itself (Vltava's zero-config start, and Kafka 4's single-node
//     server.properties, whose controller.quorum.bootstrap.servers names the node's own
//     controller listener).
//   - A controller in a quorum of more than one needs a listener named in
//     controller.listener.names, and must itself be one of the voters.
//   - A broker-only node must not be a voter, needs controller.quorum.voters, and, as in
//     Kafka, names its controllers' listener in controller.listener.names without
//     binding it itself.
//   - Node id 0 is refused: Raft (etcd's) reserves it for "no node" (Vltava-specific).
//
// Each error names the key to change.

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Voter is one entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Addr string // host:port of the voter's controller listener
}

// IsBroker reports whether process.roles includes broker.
func (b *Broker) IsBroker() bool { return slices.Contains(b.ProcessRoles, "broker") }

// IsController reports whether process.roles includes controller.
func (b *Broker) IsController() bool { return slices.Contains(b.ProcessRoles, "controller") }

// QuorumVoters returns the voter set this node uses: controller.quorum.voters, or on a
// controller without it, this node alone (at its first controller listener, if any).
func (b *Broker) QuorumVoters() map[int32]string {
	out := make(map[int32]string, max(len(b.Voters), 1))
	for _, v := range b.Voters {
		out[v.ID] = v.Addr
	}
	if len(out) == 0 && b.IsController() {
		addr := ""
		if len(b.ControllerListeners) > 0 {
			addr = b.ControllerListeners[0]
		}
		out[b.NodeID] = addr
	}
	return out
}

// buildKRaft resolves and checks the KRaft keys.
func (b *Broker) buildKRaft() error {
	roles := b.get("process.roles")
	bad := func(key, format string, args ...any) error {
		return &Error{Key: key, Value: b.get(key), Reason: fmt.Sprintf(format, args...)}
	}
	if b.NodeID == 0 {
		key := "node.id"
		if !b.explicit(key) && b.explicit("broker.id") {
			key = "broker.id"
		}
		return bad(key, "node id 0 cannot be used: the metadata quorum (Raft) reserves it for \"no node\"; number nodes from 1 (Vltava-specific)")
	}
	voters, err := parseVoters(b.get("controller.quorum.voters"))
	if err != nil {
		return bad("controller.quorum.voters", "%v", err)
	}
	b.Voters = voters
	b.QuorumBootstrapServers = nil
	for _, s := range parseList(b.get("controller.quorum.bootstrap.servers")) {
		if err := checkHostPort(s); err != nil {
			return bad("controller.quorum.bootstrap.servers", "entry %q: %v", s, err)
		}
		b.QuorumBootstrapServers = append(b.QuorumBootstrapServers, s)
	}
	controllerNames := parseList(strings.ToUpper(b.get("controller.listener.names")))
	isVoter := slices.ContainsFunc(voters, func(v Voter) bool { return v.ID == b.NodeID })

	if b.IsController() {
		switch {
		case !b.IsBroker() && len(b.Listeners) > 0:
			return bad("listeners", "a controller-only node (process.roles=%s) serves no clients: its listeners must all be named in controller.listener.names (%s is not), as in Kafka", roles, b.ListenerNames[0])
		case len(voters) > 0 && !isVoter:
			return bad("controller.quorum.voters", "this node (node.id=%d) is a controller (process.roles=%s) but not one of the voters: add %d@HOST:PORT with its controller listener", b.NodeID, roles, b.NodeID)
		case len(voters) > 1 && len(b.ControllerListeners) == 0:
			if len(controllerNames) == 0 {
				return bad("controller.listener.names", "a controller in a quorum of %d voters needs a controller listener: set controller.listener.names=CONTROLLER and add CONTROLLER://HOST:PORT to listeners", len(voters))
			}
			return bad("listeners", "a controller in a quorum of %d voters needs a listener named in controller.listener.names (%s), e.g. %s://HOST:PORT", len(voters), strings.Join(controllerNames, ","), controllerNames[0])
		case len(voters) == 0:
			// A quorum of this node alone, unless the bootstrap servers name others.
			for _, s := range b.QuorumBootstrapServers {
				if !b.isOwnControllerListener(s) {
					return bad("controller.quorum.bootstrap.servers", "%s is not one of this node's controller listeners: a controller quorum of several nodes is formed from controller.quorum.voters (static voters); discovering it through bootstrap servers (KIP-853's dynamic quorum) is not supported", s)
				}
			}
		}
	} else {
		// Broker only: an observer of the quorum, as in Kafka.
		switch {
		case isVoter:
			return bad("controller.quorum.voters", "this node (node.id=%d) is not a controller (process.roles=%s) and so cannot be a voter", b.NodeID, roles)
		case len(voters) == 0 && len(b.QuorumBootstrapServers) > 0:
			return bad("controller.quorum.voters", "a broker-only node finds the quorum through controller.quorum.voters; finding the voters through controller.quorum.bootstrap.servers alone is not supported yet")
		case len(voters) == 0:
			return bad("controller.quorum.voters", "a broker-only node (process.roles=%s) needs the quorum's voters: set controller.quorum.voters=ID@HOST:PORT,...", roles)
		case len(controllerNames) == 0:
			return bad("controller.listener.names", "a broker-only node needs the name of the controllers' listener (as in Kafka), e.g. controller.listener.names=CONTROLLER")
		case len(b.ControllerListeners) > 0:
			return bad("controller.listener.names", "a broker-only node must not bind a controller listener (%s is in listeners), as in Kafka", b.ControllerListenerNames[0])
		}
	}

	b.InterBrokerListenerName = ""
	if b.explicit("inter.broker.listener.name") {
		name := strings.ToUpper(strings.TrimSpace(b.get("inter.broker.listener.name")))
		switch {
		case slices.Contains(controllerNames, name):
			return bad("inter.broker.listener.name", "%s is a controller listener (controller.listener.names); brokers talk to each other on a client listener", name)
		case b.IsBroker() && !slices.Contains(b.ListenerNames, name):
			return bad("inter.broker.listener.name", "%s is not one of the listeners (%s)", name, strings.Join(b.ListenerNames, ","))
		}
		b.InterBrokerListenerName = name
	} else if len(b.ListenerNames) > 0 {
		b.InterBrokerListenerName = b.ListenerNames[0]
		if slices.Contains(b.ListenerNames, "PLAINTEXT") {
			b.InterBrokerListenerName = "PLAINTEXT"
		}
	}

	b.MetadataLogDir = strings.TrimSpace(b.get("metadata.log.dir"))
	if b.explicit("metadata.log.dir") && b.MetadataLogDir == "" {
		return bad("metadata.log.dir", "must name a directory (leave it unset for the first log dir)")
	}
	if b.MetadataLogDir == "" {
		b.MetadataLogDir = b.LogDirs[0]
	}
	b.BrokerRack = strings.TrimSpace(b.get("broker.rack"))
	b.BrokerHeartbeatInterval = millis(parseInt(b.get("broker.heartbeat.interval.ms")))
	b.BrokerSessionTimeout = millis(parseInt(b.get("broker.session.timeout.ms")))
	if b.BrokerHeartbeatInterval >= b.BrokerSessionTimeout {
		return bad("broker.heartbeat.interval.ms", "must be less than broker.session.timeout.ms (%d)", b.BrokerSessionTimeout.Milliseconds())
	}
	if e, f := parseInt(b.get("controller.quorum.election.timeout.ms")), parseInt(b.get("controller.quorum.fetch.timeout.ms")); f < 2 || min(e, f/2) < 2 {
		return bad("controller.quorum.fetch.timeout.ms", "the quorum's election timeout, the smaller of controller.quorum.election.timeout.ms (%d) and half of controller.quorum.fetch.timeout.ms (%d), must be at least 2 ms", e, f)
	}
	if frame, entry := parseInt(b.get("vltava.quorum.max.frame.bytes")), parseInt(b.get("vltava.quorum.max.entry.bytes")); frame < entry+4096 {
		return bad("vltava.quorum.max.frame.bytes", "must hold an entry of vltava.quorum.max.entry.bytes (%d) and its framing: at least %d", entry, entry+4096)
	}
	if rb := parseInt(b.get("vltava.quorum.receive.buffer.bytes")); rb != 0 && rb < parseInt(b.get("vltava.quorum.max.frame.bytes")) {
		return bad("vltava.quorum.receive.buffer.bytes", "must hold one frame of vltava.quorum.max.frame.bytes (%s), or be 0 for twice that", b.get("vltava.quorum.max.frame.bytes"))
	}
	return nil
}

// isOwnControllerListener reports whether host:port s is one of this node's controller
// listeners: the same port (the host may be any name of this machine), or any port when
// the listener binds port 0.
func (b *Broker) isOwnControllerListener(s string) bool {
	_, port, _ := net.SplitHostPort(s)
	return slices.ContainsFunc(b.ControllerListeners, func(l string) bool {
		_, p, _ := net.SplitHostPort(l)
		return p == port || p == "0"
	})
}

// parseVoters parses controller.quorum.voters: id@host:port entries, each id once.
func parseVoters(v string) ([]Voter, error) {
	var out []Voter
	for _, item := range parseList(v) {
		id, addr, ok := strings.Cut(item, "@")
		n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("entry %q is not id@host:port", item)
		}
		if n <= 0 {
			return nil, fmt.Errorf("entry %q: a voter's id must be at least 1 (Raft reserves 0)", item)
		}
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("entry %q: %v", item, err)
		}
		if slices.ContainsFunc(out, func(o Voter) bool { return o.ID == int32(n) }) {
			return nil, fmt.Errorf("node %d is listed twice", n)
		}
		out = append(out, Voter{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// checkHostPort accepts host:port with a host and a port from 1 to 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("expected host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("the port must be a number from 1 to 65535")
	}
	return nil
}
