package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// maxForwardTimeout caps how long the active controller works on one forwarded request.
const maxForwardTimeout = 30 * time.Second

// serveForward answers forwarded requests on one connection, one at a time, until it fails or closes.
func (c *Controller) serveForward(conn net.Conn) {
	select {
	case <-c.started:
	case <-c.stop:
		return
	}
	for {
		var req forwardRequest
		if err := readFrame(conn, &req); err != nil {
			return
		}
		resp := c.handleForward(req)
		conn.SetWriteDeadline(time.Now().Add(c.cfg.Timing.RaftRPCTimeout))
		if err := writeFrame(conn, resp); err != nil {
			return
		}
		conn.SetWriteDeadline(time.Time{})
	}
}

func (c *Controller) handleForward(req forwardRequest) forwardResponse {
	timeout := min(max(req.Timeout, 10*time.Millisecond), maxForwardTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch {
	case req.Command != nil && req.Heartbeat == nil:
		var cmd meta.Command
		if err := json.Unmarshal(req.Command.Command, &cmd); err != nil {
			return forwardResponse{Error: fmt.Sprintf("decode forwarded command: %v", err), ErrorCode: kerr.InvalidRequest.Code}
		}
		res, ok, err := c.proposeLocal(ctx, req.Command.Command)
		if !ok {
			return forwardResponse{NotActive: true}
		}
		if err != nil {
			return forwardResponse{Error: err.Error(), Unknown: errors.Is(err, ErrOutcomeUnknown)}
		}
		raw, err := json.Marshal(res)
		if err != nil {
			return forwardResponse{Error: fmt.Sprintf("encode result: %v", err)}
		}
		return forwardResponse{Result: raw}
	case req.Heartbeat != nil && req.Command == nil:
		ok, err := c.live.heartbeat(req.Heartbeat.ID, req.Heartbeat.Epoch)
		if !ok {
			return forwardResponse{NotActive: true}
		}
		if err != nil {
			resp := forwardResponse{Error: err.Error()}
			var ke *kerr.Error
			if errors.As(err, &ke) {
				resp.ErrorCode = ke.Code
			}
			return resp
		}
		return forwardResponse{}
	}
	return forwardResponse{Error: "forward request must carry exactly one of command or heartbeat", ErrorCode: kerr.InvalidRequest.Code}
}

// forward sends req to the controller at addr. retry=true means nothing was done there (unreachable, or not
// the active controller) so the caller may try again; otherwise err is the final outcome. Heartbeats are
// idempotent, so they also retry after a broken exchange and reuse pooled connections; commands use a fresh
// connection each, so a failure after sending is reported as an unknown outcome rather than retried.
func (c *Controller) forward(ctx context.Context, addr string, req forwardRequest, decode func(json.RawMessage) error) (bool, error) {
	idempotent := req.Heartbeat != nil
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxForwardTimeout)
	}
	if idempotent {
		if short := time.Now().Add(c.cfg.Timing.RaftRPCTimeout); short.Before(deadline) {
			deadline = short
		}
	}
	req.Timeout = time.Until(deadline)
	var conn net.Conn
	if idempotent {
		conn = c.pool.get(addr)
	}
	if conn == nil {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.Timing.RaftRPCTimeout)
		var err error
		conn, err = dialKind(dctx, c.cfg.Dial, addr, streamForward)
		cancel()
		if err != nil {
			return true, err
		}
	}
	conn.SetDeadline(deadline)
	var resp forwardResponse
	err := writeFrame(conn, req)
	if err == nil {
		err = readFrame(conn, &resp)
	}
	if err != nil {
		conn.Close()
		if idempotent {
			return true, fmt.Errorf("forward to active controller %s: %w", addr, err)
		}
		return false, fmt.Errorf("forward to active controller %s: %w: %w", addr, ErrOutcomeUnknown, err)
	}
	conn.SetDeadline(time.Time{})
	if idempotent {
		c.pool.put(addr, conn)
	} else {
		conn.Close()
	}
	switch {
	case resp.NotActive:
		return true, fmt.Errorf("controller at %s is not active", addr)
	case resp.ErrorCode != 0:
		return false, fmt.Errorf("active controller %s: %s: %w", addr, resp.Error, kerr.ErrorForCode(resp.ErrorCode))
	case resp.Unknown:
		return false, fmt.Errorf("active controller %s: %w: %s", addr, ErrOutcomeUnknown, resp.Error)
	case resp.Error != "":
		return false, fmt.Errorf("active controller %s: %s", addr, resp.Error)
	}
	if decode != nil {
		if err := decode(resp.Result); err != nil {
			return false, fmt.Errorf("decode result from active controller %s: %w", addr, err)
		}
	}
	return false, nil
}
