package config

// Loading the static broker configuration: defaults, then a properties file, then
// VLTAVA_* environment variables, then overrides; every key checked against the table
// and every value against its validator, with messages naming the key and its origin.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable Load reads.
const EnvPrefix = "VLTAVA_"

// IsToolEnv reports whether an environment variable (name without "=value") is one of
// the few VLTAVA_* variables that are not broker configuration and Load skips:
//
//	VLTAVA_BROKERS    bootstrap servers for the command-line tools
//	VLTAVA_CONFIG     path of the properties file, for the server command
//	VLTAVA_LOG_LEVEL  the process's log verbosity
//	VLTAVA_TEST_*     settings of test suites (they leak into servers tests start)
//	VLTAVA_E2E_*      settings of the end-to-end harness, likewise
func IsToolEnv(name string) bool {
	switch name {
	case "VLTAVA_BROKERS", "VLTAVA_CONFIG", "VLTAVA_LOG_LEVEL":
		return true
	}
	return strings.HasPrefix(name, "VLTAVA_TEST_") || strings.HasPrefix(name, "VLTAVA_E2E_")
}

// EnvName is the environment variable that sets key: VLTAVA_ then the key in upper case
// with dots as underscores (log.dirs -> VLTAVA_LOG_DIRS).
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envKey maps an environment variable name back to a key. No Kafka key holds an
// underscore, so dots-for-underscores is unambiguous.
func envKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, EnvPrefix), "_", "."))
}

// knownBrokerKey reports whether key may appear in the static configuration.
func knownBrokerKey(key string) bool {
	return brokerKeyIndex[key] != nil || acceptedKafkaKey(key)
}

// Load resolves the configuration: defaults, then the properties file at path (if not
// empty; Java properties syntax), then environment variables VLTAVA_<KEY> with dots as
// underscores, upper case (VLTAVA_LOG_DIRS), then overrides (from --override k=v and
// convenience flags). Unknown keys are an error; so are invalid values.
func Load(path string, env []string, overrides map[string]string) (Broker, error) {
	static := make(map[string]string)
	origin := make(map[string]string) // where each key's value came from, for errors
	set := func(key, value, where string) error {
		if !knownBrokerKey(key) {
			return &Error{Key: key, Where: where, Hint: brokerKeyHint(key)}
		}
		static[key] = strings.TrimSpace(value)
		origin[key] = where
		return nil
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Broker{}, fmt.Errorf("read config file: %w", err)
		}
		props, err := ParseProperties(string(data))
		if err != nil {
			return Broker{}, fmt.Errorf("config file %s: %w", path, err)
		}
		for _, p := range props {
			if err := set(p.Key, p.Value, fmt.Sprintf("%s line %d", path, p.Line)); err != nil {
				return Broker{}, err
			}
		}
	}
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || IsToolEnv(name) {
			continue
		}
		if err := set(envKey(name), value, "environment variable "+name); err != nil {
			return Broker{}, err
		}
	}
	// Overrides in sorted order, so the first error reported does not depend on map order.
	for _, key := range sortedKeys(overrides) {
		if err := set(key, overrides[key], "override"); err != nil {
			return Broker{}, err
		}
	}
	for _, key := range sortedKeys(static) {
		k := brokerKeyIndex[key]
		if k == nil {
			continue // an accepted Kafka key that does not apply: any value
		}
		if why := validate(k.typ, k.check, static[key]); why != "" {
			return Broker{}, &Error{Key: key, Value: static[key], Reason: why, Where: origin[key]}
		}
	}
	b := Broker{static: static}
	if err := b.build(); err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Where == "" {
			ce.Where = origin[ce.Key]
		}
		return Broker{}, err
	}
	return b, nil
}

// ParseOverrides turns "key=value" arguments (the server's repeated --override flag)
// into an overrides map for Load; later arguments win. Keys are checked by Load.
func ParseOverrides(args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("override %q: expected key=value", arg)
		}
		out[key] = value
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lookup returns a broker key's effective value and the layer it came from; ok is
// false when the key is unset and its default is null.
func (b *Broker) lookup(key string) (value string, source int8, ok bool) {
	if v, ok := b.dynBroker[key]; ok {
		return v, SourceDynamicBroker, true
	}
	if v, ok := b.dynDefault[key]; ok {
		return v, SourceDynamicDefaultBroker, true
	}
	if v, ok := b.static[key]; ok {
		return v, SourceStaticBroker, true
	}
	if k := brokerKeyIndex[key]; k != nil && !k.null {
		return k.def, SourceDefault, true
	}
	return "", 0, false
}

// explicit reports whether key is set in any layer above the defaults.
func (b *Broker) explicit(key string) bool {
	_, src, ok := b.lookup(key)
	return ok && src != SourceDefault
}

// get returns a key's effective value, "" when null.
func (b *Broker) get(key string) string {
	v, _, _ := b.lookup(key)
	return v
}

// build fills Values and the typed fields from the layers, and checks what spans
// several keys. Every single value was validated before it got into a layer.
func (b *Broker) build() error {
	b.Values = make(map[string]string, len(brokerKeys)+len(b.static))
	for i := range brokerKeys {
		if v, _, ok := b.lookup(brokerKeys[i].name); ok {
			b.Values[brokerKeys[i].name] = v
		}
	}
	for k, v := range b.static {
		if brokerKeyIndex[k] == nil { // accepted Kafka keys that do not apply
			b.Values[k] = v
		}
	}

	b.NodeID = int32(parseInt(b.get("node.id")))
	// broker.id=-1 is Kafka's "not set"; any other value must agree with node.id.
	if b.explicit("broker.id") && parseInt(b.get("broker.id")) >= 0 {
		id := int32(parseInt(b.get("broker.id")))
		if b.explicit("node.id") && id != b.NodeID {
			return &Error{Key: "broker.id", Value: b.get("broker.id"), Reason: fmt.Sprintf("must equal node.id (%d) when both are set", b.NodeID)}
		}
		b.NodeID = id
	}
	b.ProcessRoles = parseList(b.get("process.roles"))

	if err := b.buildListeners(); err != nil {
		return err
	}
	dirsKey := "log.dir"
	if b.explicit("log.dirs") {
		dirsKey = "log.dirs"
	}
	b.LogDirs = slices.DeleteFunc(parseList(b.get(dirsKey)), func(d string) bool { return d == "" })
	if len(b.LogDirs) == 0 {
		return &Error{Key: dirsKey, Value: b.get(dirsKey), Reason: "must name at least one directory"}
	}
	for i, d := range b.LogDirs {
		if slices.Contains(b.LogDirs[:i], d) {
			return &Error{Key: dirsKey, Value: b.get(dirsKey), Reason: fmt.Sprintf("directory %s is listed twice", d)}
		}
	}
	b.ClusterID = b.get("cluster.id")
	b.NumPartitions = int32(parseInt(b.get("num.partitions")))
	b.DefaultReplicationFactor = int16(clamp(parseInt(b.get("default.replication.factor")), math.MaxInt16))
	b.AutoCreateTopics = parseBool(b.get("auto.create.topics.enable"))
	b.DeleteTopicEnable = parseBool(b.get("delete.topic.enable"))
	b.SocketRequestMaxBytes = int32(parseInt(b.get("socket.request.max.bytes")))
	b.RequestTimeout = millis(parseInt(b.get("request.timeout.ms")))
	b.GroupInitialRebalanceDelay = millis(parseInt(b.get("group.initial.rebalance.delay.ms")))
	b.OffsetsTopicNumPartitions = int32(parseInt(b.get("offsets.topic.num.partitions")))
	b.OffsetsTopicReplicationFactor = int16(parseInt(b.get("offsets.topic.replication.factor")))
	b.OffsetsRetention = millis(parseInt(b.get("offsets.retention.minutes")) * msPerMinute)
	b.ConnectionsMaxIdle = millis(parseInt(b.get("connections.max.idle.ms")))
	b.MaxConnections = int(parseInt(b.get("max.connections")))
	b.QueuedMaxRequests = int(parseInt(b.get("queued.max.requests")))
	b.LogRetentionCheckInterval = millis(parseInt(b.get("log.retention.check.interval.ms")))
	b.GroupMinSessionTimeout = millis(parseInt(b.get("group.min.session.timeout.ms")))
	b.GroupMaxSessionTimeout = millis(parseInt(b.get("group.max.session.timeout.ms")))
	if b.GroupMinSessionTimeout > b.GroupMaxSessionTimeout {
		return &Error{Key: "group.min.session.timeout.ms", Value: b.get("group.min.session.timeout.ms"), Reason: "must not exceed group.max.session.timeout.ms"}
	}
	b.GroupMaxSize = int32(parseInt(b.get("group.max.size")))
	b.TransactionStateNumPartitions = int32(parseInt(b.get("transaction.state.log.num.partitions")))
	b.TransactionMaxTimeout = millis(parseInt(b.get("transaction.max.timeout.ms")))
	b.FetchMaxBytes = int32(parseInt(b.get("fetch.max.bytes")))
	b.ReplicaLagTimeMax = millis(parseInt(b.get("replica.lag.time.max.ms")))
	b.ConsumerAssignors = parseConsumerAssignors(b.get("group.consumer.assignors"))
	// The KRaft keys last: their checks name the listeners and the log dirs resolved above.
	return b.buildKRaft()
}

func clamp(n, max int64) int64 {
	if n > max {
		return max
	}
	return n
}

// millis converts milliseconds to a Duration, saturating: Kafka's "never" is
// Long.MAX_VALUE milliseconds, which does not fit in a Duration.
func millis(ms int64) time.Duration {
	switch {
	case ms > math.MaxInt64/int64(time.Millisecond):
		return time.Duration(math.MaxInt64)
	case ms < math.MinInt64/int64(time.Millisecond):
		return time.Duration(math.MinInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// buildListeners parses listeners and advertised.listeners. Each entry is
// NAME://host:port or host:port (taken as PLAINTEXT); the name must map to PLAINTEXT in
// listener.security.protocol.map, except controller listener names, which Kafka maps to
// PLAINTEXT when the map does not mention them.
func (b *Broker) buildListeners() error {
	protocols := make(map[string]string)
	for _, item := range parseList(b.get("listener.security.protocol.map")) {
		name, proto, ok := strings.Cut(item, ":")
		if !ok || name == "" || proto == "" {
			return &Error{Key: "listener.security.protocol.map", Value: b.get("listener.security.protocol.map"),
				Reason: fmt.Sprintf("entry %q is not NAME:PROTOCOL", item)}
		}
		protocols[strings.ToUpper(name)] = strings.ToUpper(proto)
	}
	controllerNames := make(map[string]bool)
	for _, name := range parseList(b.get("controller.listener.names")) {
		controllerNames[strings.ToUpper(name)] = true
	}
	type listener struct{ name, addr string }
	parse := func(key string) ([]listener, error) {
		var out []listener
		seen := make(map[string]bool)
		for _, item := range parseList(b.get(key)) {
			name, addr, err := parseListener(item)
			if err != nil {
				return nil, &Error{Key: key, Value: b.get(key), Reason: err.Error()}
			}
			if seen[name] {
				return nil, &Error{Key: key, Value: b.get(key), Reason: fmt.Sprintf("listener name %s appears twice", name)}
			}
			seen[name] = true
			proto, ok := protocols[name]
			if !ok && controllerNames[name] {
				proto, ok = "PLAINTEXT", true
			}
			if !ok {
				return nil, &Error{Key: key, Value: b.get(key), Reason: fmt.Sprintf("listener name %s is not in listener.security.protocol.map", name)}
			}
			if proto != "PLAINTEXT" {
				return nil, &Error{Key: key, Value: b.get(key), Reason: fmt.Sprintf("listener %s uses %s; only PLAINTEXT is supported", name, proto)}
			}
			out = append(out, listener{name, addr})
		}
		return out, nil
	}
	listeners, err := parse("listeners")
	if err != nil {
		return err
	}
	b.Listeners, b.ControllerListeners, b.ListenerNames, b.ControllerListenerNames = nil, nil, nil, nil
	for _, l := range listeners {
		if controllerNames[l.name] {
			b.ControllerListeners = append(b.ControllerListeners, l.addr)
			b.ControllerListenerNames = append(b.ControllerListenerNames, l.name)
		} else {
			b.Listeners = append(b.Listeners, l.addr)
			b.ListenerNames = append(b.ListenerNames, l.name)
		}
	}
	if len(b.Listeners) == 0 && slices.Contains(b.ProcessRoles, "broker") {
		return &Error{Key: "listeners", Value: b.get("listeners"), Reason: "a broker needs at least one listener for clients"}
	}
	b.AdvertisedListeners = nil
	byName := make(map[string]string)
	if b.explicit("advertised.listeners") {
		advertised, err := parse("advertised.listeners")
		if err != nil {
			return err
		}
		for _, a := range advertised {
			if !slices.ContainsFunc(listeners, func(l listener) bool { return l.name == a.name }) {
				return &Error{Key: "advertised.listeners", Value: b.get("advertised.listeners"),
					Reason: fmt.Sprintf("listener name %s is not in listeners", a.name)}
			}
			// Clients connect to what is advertised, so it must be a concrete address: not
			// a random port, not "all interfaces" (Kafka refuses 0.0.0.0 likewise).
			host, port, _ := net.SplitHostPort(a.addr)
			if port == "0" {
				return &Error{Key: "advertised.listeners", Value: b.get("advertised.listeners"), Reason: "an advertised port cannot be 0"}
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				return &Error{Key: "advertised.listeners", Value: b.get("advertised.listeners"),
					Reason: fmt.Sprintf("%s is not an address clients can connect to", a.addr)}
			}
			byName[a.name] = a.addr
		}
	}
	// As in Kafka, a client listener not named in advertised.listeners advertises its
	// own address: an empty host (every interface) as this machine's host name, and a
	// wildcard address not at all, since clients cannot connect to it (Kafka: "cannot use
	// the nonroutable meta-address 0.0.0.0"). AdvertisedListeners lines up with Listeners,
	// and stays empty when every listener advertises the address it binds.
	same := true
	for _, l := range listeners {
		if controllerNames[l.name] {
			continue
		}
		addr, ok := byName[l.name]
		if !ok {
			host, port, _ := net.SplitHostPort(l.addr)
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				return &Error{Key: "listeners", Value: b.get("listeners"), Reason: fmt.Sprintf(
					"listener %s binds %s, which clients cannot connect to, and advertised.listeners does not name it: "+
						"set advertised.listeners=%s://HOST:%s with an address clients can reach, or leave the host empty "+
						"(%s://:%s) to advertise this machine's host name", l.name, host, l.name, port, l.name, port)}
			}
			addr = l.addr
			if host == "" {
				name, err := os.Hostname()
				if err != nil || name == "" {
					return &Error{Key: "listeners", Value: b.get("listeners"), Reason: fmt.Sprintf(
						"listener %s has no host and this machine's host name is unknown (%v): set advertised.listeners", l.name, err)}
				}
				addr = net.JoinHostPort(name, port)
			}
		}
		same = same && addr == l.addr
		b.AdvertisedListeners = append(b.AdvertisedListeners, addr)
	}
	if same && len(byName) == 0 {
		b.AdvertisedListeners = nil
	}
	return nil
}

// parseListener splits NAME://host:port (or host:port, named PLAINTEXT) into the upper
// case name and host:port. The host may be empty (all interfaces) or a bracketed IPv6
// address; the port must be 0 (a random port) to 65535.
func parseListener(s string) (name, addr string, err error) {
	name = "PLAINTEXT"
	addr = s
	if n, rest, ok := strings.Cut(s, "://"); ok {
		if n == "" {
			return "", "", fmt.Errorf("listener %q has an empty name", s)
		}
		name, addr = strings.ToUpper(n), rest
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("listener %q: expected host:port", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", "", fmt.Errorf("listener %q: port must be a number from 0 to 65535", s)
	}
	return name, net.JoinHostPort(host, port), nil
}
