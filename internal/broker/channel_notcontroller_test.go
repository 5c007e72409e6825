package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/controller"
)

// The channel retries every controller API's NOT_CONTROLLER answer elsewhere: the
// controller's own error response of each loop API is recognised.
func TestNotControllerRecognised(t *testing.T) {
	for _, key := range []int16{19, 20, 33, 37, 44, 45, 46, 56, 62, 63, 67} {
		req := kmsg.RequestForKey(key)
		switch r := req.(type) { // a request with one entry, so per-entry codes exist
		case *kmsg.CreateTopicsRequest:
			r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "t"}}
		case *kmsg.DeleteTopicsRequest:
			r.TopicNames = []string{"t"}
		case *kmsg.AlterConfigsRequest:
			r.Resources = []kmsg.AlterConfigsRequestResource{{ResourceName: "t"}}
		case *kmsg.CreatePartitionsRequest:
			r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t"}}
		case *kmsg.IncrementalAlterConfigsRequest:
			r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceName: "t"}}
		case *kmsg.AlterPartitionAssignmentsRequest:
			r.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{}}}}
		}
		resp := controller.ErrorResponse(req, kerr.NotController.Code, nil)
		if resp == nil {
			t.Errorf("API %d: no error response", key)
			continue
		}
		if !notController(resp) {
			t.Errorf("API %d (%s): NOT_CONTROLLER not recognised", key, kmsg.NameForKey(key))
		}
	}
}
