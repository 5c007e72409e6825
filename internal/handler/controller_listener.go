package handler

// The controller listener's requests (the server routes the quorum's own frames, API key
// 1000, to the quorum member before they reach here). It answers:
//
//   - ApiVersions (v0-4), advertising itself and the controller APIs of the installed
//     ControllerAPIs, as Kafka's controller listener advertises the controller's;
//   - the controller APIs, by the installed ControllerAPIs (the active controller,
//     internal/controller, which answers NOT_CONTROLLER where it is not active);
//   - with none installed, the controller APIs Kafka's controllers serve answer
//     NOT_CONTROLLER in their error fields and are not advertised;
//   - anything else closes the connection, as an unknown API does on any listener.

import (
	"context"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vltava/vltava/internal/controller"
	"github.com/vltava/vltava/internal/wire"
)

// ControllerAPIs answers the controller APIs on the controller listener: what the active
// controller (internal/controller) implements.
type ControllerAPIs interface {
	// Handle answers a decoded request of one of APIs' keys, at a version within
	// APIs' range.
	Handle(ctx context.Context, req kmsg.Request) kmsg.Response
	// APIs are the keys and versions it serves.
	APIs() []kmsg.ApiVersionsResponseApiKey
}

// controllerSlot holds the installed ControllerAPIs.
type controllerSlot struct {
	p atomic.Pointer[ControllerAPIs]
}

// SetController installs c as the controller listener's controller APIs (nil removes
// them).
func (h *Handler) SetController(c ControllerAPIs) {
	if c == nil {
		h.controller.p.Store(nil)
		return
	}
	h.controller.p.Store(&c)
}

func (h *Handler) installedController() ControllerAPIs {
	if p := h.controller.p.Load(); p != nil {
		return *p
	}
	return nil
}

// controllerAPIKeys are the controller listener's APIs: ApiVersions and c's.
func controllerAPIKeys(c ControllerAPIs) []kmsg.ApiVersionsResponseApiKey {
	keys := []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
	if c != nil {
		for _, k := range c.APIs() {
			if k.ApiKey != 18 {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// ServeController handles one request frame of the controller listener, as Serve does
// for the clients' listeners: ok false closes the connection.
func (h *Handler) ServeController(ctx context.Context, c *Client, frame []byte) (*Response, bool) {
	key, version, corr, ok := wire.ParseKeyVersion(frame)
	if !ok {
		return nil, false
	}
	ctrl := h.installedController()
	keys := controllerAPIKeys(ctrl)
	var served *kmsg.ApiVersionsResponseApiKey
	for i := range keys {
		if keys[i].ApiKey == key {
			served = &keys[i]
		}
	}
	switch {
	case served == nil && (ctrl != nil || !isControllerAPI(key)):
		h.b.Logger().Debug("controller listener: api not served", "key", key, "client", c.Addr)
		return nil, false
	case served != nil && (version < served.MinVersion || version > served.MaxVersion):
		if key == 18 { // KIP-511
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ErrorCode, resp.ApiKeys = kerr.UnsupportedVersion.Code, keys
			return h.encode(corr, resp, false), true
		}
		return nil, false
	}
	req := kmsg.RequestForKey(key)
	if req == nil || version > req.MaxVersion() {
		return nil, false
	}
	req.SetVersion(version)
	_, body, err := wire.ParseHeader(frame, func(int16, int16) bool { return req.IsFlexible() })
	if err != nil || req.ReadFrom(body) != nil {
		return nil, false
	}
	var resp kmsg.Response
	switch {
	case key == 18:
		r := req.(*kmsg.ApiVersionsRequest)
		ar := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		ar.ApiKeys, ar.FinalizedFeaturesEpoch = keys, -1
		if r.Version >= 3 && (!softwareNamePattern.MatchString(r.ClientSoftwareName) || !softwareNamePattern.MatchString(r.ClientSoftwareVersion)) {
			ar.ErrorCode, ar.ApiKeys = kerr.InvalidRequest.Code, nil
		}
		resp = ar
	case ctrl != nil:
		resp = ctrl.Handle(ctx, req)
	default:
		resp = notController(req)
	}
	if resp == nil {
		return nil, false
	}
	return h.encode(corr, resp, key != 18 && resp.IsFlexible()), true
}

// isControllerAPI reports whether key is an API Kafka's controllers serve on their
// listener.
func isControllerAPI(key int16) bool {
	switch key {
	case 19, 20, 33, 37, 44, 55, 62, 63, 67, 80, 81:
		return true
	}
	return false
}

// notController answers a controller API with NOT_CONTROLLER, where Kafka's responses
// put it.
func notController(kr kmsg.Request) kmsg.Response {
	return controller.ErrorResponse(kr, kerr.NotController.Code, kmsg.StringPtr("this node runs no active controller"))
}
