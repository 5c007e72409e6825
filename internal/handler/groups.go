package handler

// The group APIs are answered by the group coordinator (internal/group); these are the
// thin translations from a request on a connection to a coordinator call. Supported
// versions (see the dispatch table): JoinGroup 0-9, SyncGroup 0-5, Heartbeat 0-4,
// LeaveGroup 0-5, OffsetCommit 0-9, OffsetFetch 0-9, DescribeGroups 0-5, ListGroups 0-5,
// DeleteGroups 0-2, OffsetDelete 0, ConsumerGroupHeartbeat 0-1, ConsumerGroupDescribe 0-1.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/group"
)

func groupClient(r *Request) group.Client {
	return group.Client{ID: r.Header.ClientID, Host: "/" + r.Client.Host}
}

// JoinGroup and SyncGroup wait at the group's barrier (the other members, the
// leader's assignment) on purpose: their whole time counts as parked for the
// slow-request log.

func (h *Handler) joinGroup(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	defer parked(r, time.Now())
	return h.groups.JoinGroup(ctx, groupClient(r), kr.(*kmsg.JoinGroupRequest))
}

func (h *Handler) syncGroup(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	defer parked(r, time.Now())
	return h.groups.SyncGroup(ctx, kr.(*kmsg.SyncGroupRequest))
}

func parked(r *Request, since time.Time) { r.Client.Parked += time.Since(since) }

func (h *Handler) heartbeat(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.Heartbeat(kr.(*kmsg.HeartbeatRequest))
}

func (h *Handler) leaveGroup(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.LeaveGroup(kr.(*kmsg.LeaveGroupRequest))
}

func (h *Handler) offsetCommit(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.OffsetCommitRequest)
	resp := h.groups.OffsetCommit(ctx, req)
	h.logOutsideCommit(r, req, resp)
	return resp
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

func (h *Handler) deleteGroups(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	resp := h.groups.DeleteGroups(ctx, kr.(*kmsg.DeleteGroupsRequest))
	h.logGroupsDeleted(r, resp)
	return resp
}

func (h *Handler) offsetDelete(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	req := kr.(*kmsg.OffsetDeleteRequest)
	resp := h.groups.OffsetDelete(ctx, req)
	h.logOffsetsDeleted(r, req, resp)
	return resp
}

func (h *Handler) consumerGroupHeartbeat(ctx context.Context, r *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.ConsumerGroupHeartbeat(ctx, groupClient(r), kr.(*kmsg.ConsumerGroupHeartbeatRequest))
}

func (h *Handler) consumerGroupDescribe(_ context.Context, _ *Request, kr kmsg.Request) kmsg.Response {
	return h.groups.ConsumerGroupDescribe(kr.(*kmsg.ConsumerGroupDescribeRequest))
}
