package handler

// DeleteTopics v0-6: by name, or by topic ID from v6. Internal topics cannot be
// deleted.

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/broker"
)

func (h *Handler) deleteTopics(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	}
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = t.name, t.id
		var err error
		name := ""
		switch {
		case t.name != nil && *t.name != "":
			name = *t.name
		default:
			if mt := h.b.Image().TopicByID(uuid.UUID(t.id)); mt != nil {
				name = mt.Name
				n := name
				st.Topic = &n
			} else {
				err = kerr.UnknownTopicID
			}
		}
		if err == nil {
			if broker.IsInternal(name) {
				err = fmt.Errorf("%w: internal topic %s cannot be deleted", kerr.InvalidTopicException, name)
			} else {
				var id uuid.UUID
				id, err = h.b.DeleteTopic(name)
				if err == nil {
					st.TopicID = id
					h.m.Topics.Forget(name)
				}
			}
		}
		if err != nil {
			st.ErrorCode = codeOf(err)
			if req.Version >= 5 {
				st.ErrorMessage = errMsg(err)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
