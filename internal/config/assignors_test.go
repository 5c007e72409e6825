package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// group.consumer.assignors: names or Kafka class names, in order, the first the
// default; anything else stops the broker at start with a message naming the key.
func TestConsumerAssignors(t *testing.T) {
	if got := Default().ConsumerAssignors; !slices.Equal(got, []string{"uniform", "range"}) {
		t.Fatalf("default assignors %v, want [uniform range]", got)
	}
	ok := []struct{ value, want string }{
		{"range", "range"},
		{"range,uniform", "range,uniform"},
		{" uniform , range ", "uniform,range"},
		{"org.apache.kafka.coordinator.group.assignor.RangeAssignor", "range"},
		{"org.apache.kafka.coordinator.group.assignor.RangeAssignor,org.apache.kafka.coordinator.group.assignor.UniformAssignor", "range,uniform"},
		{"uniform,org.apache.kafka.coordinator.group.assignor.RangeAssignor", "uniform,range"},
	}
	for _, tc := range ok {
		b, err := Load("", nil, map[string]string{"group.consumer.assignors": tc.value})
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		if got := strings.Join(b.ConsumerAssignors, ","); got != tc.want {
			t.Fatalf("%q: assignors %s, want %s", tc.value, got, tc.want)
		}
	}
	bad := []struct{ value, want string }{
		{"", "must name at least one assignor"},
		{" , ", "unknown assignor"},
		{"sticky", `unknown assignor "sticky"`},
		{"uniform,cooperative-sticky", `unknown assignor "cooperative-sticky"`},
		{"Range", `unknown assignor "Range"`},
		{"org.apache.kafka.clients.consumer.RangeAssignor", "unknown assignor"},
		{"range,org.apache.kafka.coordinator.group.assignor.RangeAssignor", "assignor range is listed twice"},
	}
	for _, tc := range bad {
		_, err := Load("", []string{"VLTAVA_GROUP_CONSUMER_ASSIGNORS=" + tc.value}, nil)
		if err == nil {
			t.Fatalf("%q: Load succeeded", tc.value)
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "configuration group.consumer.assignors") ||
			!strings.Contains(err.Error(), "VLTAVA_GROUP_CONSUMER_ASSIGNORS") {
			t.Fatalf("%q: error %q, want one naming the key, its origin and %q", tc.value, err, tc.want)
		}
	}
}
