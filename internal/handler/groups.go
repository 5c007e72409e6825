package handler

// The group APIs are answered by the group coordinator (internal/group); these are the
// thin translations from a request on a connection to a coordinator call. Supported
// versions (see the dispatch table): JoinGroup 0-9, SyncGroup 0-5, Heartbeat 0-4,
// LeaveGroup 0-5, OffsetCommit 0-9, OffsetFetch 0-9, DescribeGroups 0-5, ListGroups 0-5,
// DeleteGroups 0-2, OffsetDelete 0, ConsumerGroupHeartbeat 0-1, ConsumerGroupDescribe 0-1.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/group"
)

func groupClient(r *Request) group.Client {
	return group.Client{ID: r.Header.ClientID, Host: "/" + r.Client.Host}
}

func (h *Handler) joinGroup(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.JoinGroup(ctx, groupClient(r), kr.(*kmsg.JoinGroupRequest))
}

func (h *Handler) syncGroup(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.SyncGroup(ctx, kr.(*kmsg.SyncGroupRequest))
}

func (h *Handler) heartbeat(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.Heartbeat(kr.(*kmsg.HeartbeatRequest))
}

func (h *Handler) leaveGroup(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.LeaveGroup(kr.(*kmsg.LeaveGroupRequest))
}

func (h *Handler) offsetCommit(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.OffsetCommit(ctx, kr.(*kmsg.OffsetCommitRequest))
}

func (h *Handler) offsetFetch(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.OffsetFetch(kr.(*kmsg.OffsetFetchRequest))
}

func (h *Handler) describeGroups(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.DescribeGroups(kr.(*kmsg.DescribeGroupsRequest))
}

func (h *Handler) listGroups(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.ListGroups(kr.(*kmsg.ListGroupsRequest))
}

func (h *Handler) deleteGroups(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.DeleteGroups(ctx, kr.(*kmsg.DeleteGroupsRequest))
}

func (h *Handler) offsetDelete(ctx context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.OffsetDelete(ctx, kr.(*kmsg.OffsetDeleteRequest))
}

func (h *Handler) consumerGroupHeartbeat(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.ConsumerGroupHeartbeat(ctx, groupClient(r), kr.(*kmsg.ConsumerGroupHeartbeatRequest))
}

func (h *Handler) consumerGroupDescribe(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.ConsumerGroupDescribe(kr.(*kmsg.ConsumerGroupDescribeRequest))
}
