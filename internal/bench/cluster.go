package bench

// What the bench needs from the cluster before it starts: the topic (created if missing), its
// partitions, and their offsets; and the extra idle connections of --idle-connections.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicSetupTimeout bounds how long we wait for a new topic to show up in metadata.
const topicSetupTimeout = 30 * time.Second

// ensureTopic creates the topic if it is missing and returns its partition IDs, sorted. A topic
// that exists keeps its partition count, and cfg.partitions is set to the count it has, so the
// report describes the topic that was measured rather than the flag.
func ensureTopic(ctx context.Context, cfg *config) ([]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ClientID("vltava-bench"))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	ctx, cancel := context.WithTimeout(ctx, topicSetupTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(cfg.partitions), int16(cfg.replicationFactor), nil, cfg.topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create topic %s: %w", cfg.topic, err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create topic %s: %w", cfg.topic, resp.Err)
	}
	// Metadata can trail creation on a real cluster: wait until every partition has a leader.
	for {
		td, err := adm.ListTopics(ctx, cfg.topic)
		if err == nil {
			if t, ok := td[cfg.topic]; ok && t.Err == nil && len(t.Partitions) > 0 {
				ready := true
				ids := make([]int32, 0, len(t.Partitions))
				for _, p := range t.Partitions {
					ready = ready && p.Err == nil && p.Leader >= 0
					ids = append(ids, p.Partition)
				}
				if ready {
					cfg.partitions = len(ids)
					sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
					return ids, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("topic %s not ready in metadata: %w", cfg.topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// partitionOffsets returns the start or end offset of each partition of the topic.
func partitionOffsets(ctx context.Context, cfg *config, end bool) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ClientID("vltava-bench"))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	list := adm.ListStartOffsets
	if end {
		list = adm.ListEndOffsets
	}
	listed, err := list(ctx, cfg.topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", cfg.topic, err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", cfg.topic, err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// idleConns holds connections that have said hello (one ApiVersions round trip, so the broker
// has set up whatever a client connection costs it) and then stay silent.
type idleConns struct{ conns []net.Conn }

func openIdleConns(ctx context.Context, addr string, n int) (*idleConns, error) {
	ic := &idleConns{}
	var d net.Dialer
	for i := 0; i < n; i++ {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			ic.close()
			return nil, fmt.Errorf("idle connection %d of %d to %s: %w", i+1, n, addr, err)
		}
		ic.conns = append(ic.conns, c)
		if err := apiVersionsRoundTrip(c, int32(i)); err != nil {
			ic.close()
			return nil, fmt.Errorf("idle connection %d of %d to %s: %w", i+1, n, addr, err)
		}
	}
	return ic, nil
}

func (ic *idleConns) close() {
	if ic == nil {
		return
	}
	for _, c := range ic.conns {
		c.Close()
	}
	ic.conns = nil
}

// apiVersionsRoundTrip sends ApiVersions v0 (a non-flexible request header, so no tagged fields
// to encode) and reads the size-prefixed answer, checking only its correlation ID.
func apiVersionsRoundTrip(c net.Conn, correlationID int32) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	clientID := "vltava-bench-idle"
	body := make([]byte, 4, 64)
	body = binary.BigEndian.AppendUint16(body, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.Version))
	body = binary.BigEndian.AppendUint32(body, uint32(correlationID))
	body = binary.BigEndian.AppendUint16(body, uint16(len(clientID)))
	body = append(body, clientID...)
	body = req.AppendTo(body)
	binary.BigEndian.PutUint32(body, uint32(len(body)-4))
	if _, err := c.Write(body); err != nil {
		return fmt.Errorf("write ApiVersions: %w", err)
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read ApiVersions response: %w", err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:4])) - 4
	got := int32(binary.BigEndian.Uint32(hdr[4:]))
	if got != correlationID {
		return fmt.Errorf("ApiVersions response correlation id %d, want %d", got, correlationID)
	}
	if n < 0 || n > 1<<20 {
		return fmt.Errorf("ApiVersions response of %d bytes", n+4)
	}
	_, err := io.CopyN(io.Discard, c, n)
	return err
}
