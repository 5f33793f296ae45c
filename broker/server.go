package broker

// The wire server: the listener, one goroutine per connection, frame reading bounded by
// Config.MaxFrameBytes, request header parsing, dispatch to one handler per API key, and response framing.
//
// # How to add a handler
//
//  1. Create a file named after the API (joingroup.go, offsetcommit.go, ...). Start it with a comment
//     listing the versions served and every deliberate difference from Kafka.
//  2. In that file register the handler in an init function, with the lowest and highest version it serves
//     FULLY (ApiVersions advertises exactly this range, so clients never send anything else):
//
//     func init() { registerHandler(kmsg.JoinGroup, 0, 9, (*Node).handleJoinGroup) }
//
//     func (n *Node) handleJoinGroup(cc *connCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
//     resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
//     ... fill resp; the server sets its version to the request's ...
//     return resp, nil
//     }
//
//  3. Return (response, nil) to answer, (nil, nil) to send no response at all (only Produce with acks=0
//     does), or (nil, err) to log err and close the connection (what Kafka does for a request it cannot
//     parse or serve). Never panic: a panic is recovered per connection, logged loudly and closes it.
//  4. What a handler may use: cc.ctx (cancelled when the connection closes or the node stops: block on it,
//     never on a bare channel), cc.clientID, cc.remote, cc.version; n.cfg (NodeID, Defaults, ...);
//     n.image() (the latest metadata image, immutable; nil before the first one arrives); n.advertised()
//     (this node's host and port); n.groups (the group coordinator); n.log (slog.Logger).
//
// Requests on one connection are handled one at a time, in order, and answered in order (Kafka mutes a
// connection while it processes a request; a long-polling Fetch or a JoinGroup blocks only its own
// connection). Clients use separate connections for separate work.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// connCtx is one client connection as a handler sees it, plus the header of the request being handled.
type connCtx struct {
	// ctx is cancelled when the connection closes or the node stops.
	ctx      context.Context
	remote   string
	clientID string
	// version and correlationID are the current request's.
	version       int16
	correlationID int32
	// readBuf is the connection's buffer for the record batches of a Fetch response (see fetchOnce): the
	// response is encoded before the next request is read, so one buffer serves every fetch.
	readBuf []byte
}

// apiHandler serves one API key over [minVersion, maxVersion].
type apiHandler struct {
	key        int16
	minVersion int16
	maxVersion int16
	serve      func(n *Node, cc *connCtx, req kmsg.Request) (kmsg.Response, error)
}

// maxAPIKey bounds the dispatch table; kmsg's highest key is below it.
const maxAPIKey = 128

// handlers is the dispatch table, filled by init functions of the handler files and read-only afterwards.
var handlers [maxAPIKey]*apiHandler

// registerHandler adds the handler for key; it panics at init on a duplicate or malformed registration,
// which is a programming error caught by any test.
func registerHandler[R kmsg.Request](key kmsg.Key, minVersion, maxVersion int16,
	fn func(n *Node, cc *connCtx, req R) (kmsg.Response, error)) {
	k := key.Int16()
	if k < 0 || k >= maxAPIKey || handlers[k] != nil {
		panic(fmt.Sprintf("broker: bad or duplicate handler registration for API key %d", k))
	}
	probe := kmsg.RequestForKey(k)
	if probe == nil || minVersion < 0 || maxVersion < minVersion || maxVersion > probe.MaxVersion() {
		panic(fmt.Sprintf("broker: handler for %s registers versions %d..%d beyond kmsg's", key.Name(), minVersion, maxVersion))
	}
	if _, ok := probe.(R); !ok {
		panic(fmt.Sprintf("broker: handler for %s takes the wrong request type", key.Name()))
	}
	handlers[k] = &apiHandler{key: k, minVersion: minVersion, maxVersion: maxVersion,
		serve: func(n *Node, cc *connCtx, req kmsg.Request) (kmsg.Response, error) { return fn(n, cc, req.(R)) }}
}

// Frame limits. The smallest request header is api key, version, correlation id and client id length.
const (
	minRequestHeaderBytes = 10
	// frameReadStep is how much of a frame is allocated before its bytes arrive, so a peer that announces a
	// huge frame and sends nothing cannot make the node allocate it.
	frameReadStep = 1 << 20
	// writeTimeout bounds writing one response to a client that stopped reading.
	writeTimeout = 30 * time.Second
	// maxKeptBufferBytes bounds the buffers a connection keeps between requests (larger ones are dropped).
	maxKeptBufferBytes = 4 << 20
	// kmsgShortBody is the text of kmsg's (internal) error for a body shorter than its fields.
	kmsgShortBody = "response did not contain enough data to be valid"
)

var (
	errFrameTooLarge = errors.New("request frame exceeds socket.request.max.bytes")
	errFrameNegative = errors.New("invalid request frame")
	errFrameTooSmall = errors.New("request frame shorter than a request header")
	errBadHeader     = errors.New("malformed request header")
)

// acceptLoop accepts connections until the listener closes.
func (n *Node) acceptLoop(ln net.Listener) {
	defer n.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				n.log.Warn("accepting a client connection failed; listener stops", "err", err)
			}
			return
		}
		if !n.trackConn(conn) {
			conn.Close()
			return
		}
		n.wg.Add(1)
		go n.serveConn(conn)
	}
}

// trackConn records conn so Kill and Close can close it; false when the node is stopping.
func (n *Node) trackConn(conn net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return false
	}
	n.conns[conn] = struct{}{}
	return true
}

func (n *Node) untrackConn(conn net.Conn) {
	n.mu.Lock()
	delete(n.conns, conn)
	n.mu.Unlock()
}

// serveConn reads, handles and answers requests on one connection, one at a time, until it closes.
func (n *Node) serveConn(conn net.Conn) {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(n.ctx)
	cc := &connCtx{ctx: ctx, remote: conn.RemoteAddr().String()}
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("PANIC serving a client connection; connection closed, node continues",
				"remote", cc.remote, "panic", r, "stack", string(debug.Stack()))
		}
		cancel()
		conn.Close()
		n.untrackConn(conn)
	}()
	// A watcher closes the connection when the node stops, unblocking a read in progress.
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	r := bufio.NewReaderSize(conn, 64<<10)
	var out []byte
	idle := n.cfg.Timing.ConnectionsMaxIdle
	for {
		// connections.max.idle.ms: a client silent this long, or stalled inside a frame, is let go (as Kafka
		// does), so a half-open connection does not hold its goroutine for ever.
		conn.SetReadDeadline(time.Now().Add(idle))
		frame, err := readFrame(r, n.cfg.MaxFrameBytes)
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
				n.log.Info("closing idle client connection", "remote", cc.remote, "client_id", cc.clientID,
					"connections.max.idle.ms", idle.Milliseconds())
			case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil:
				n.log.Warn("closing client connection: bad frame", "remote", cc.remote, "err", err)
			}
			return
		}
		if n.gate.wait(ctx) != nil {
			return
		}
		out, err = n.handleFrame(cc, frame, out[:0])
		if err != nil {
			n.log.Warn("closing client connection", "remote", cc.remote, "client_id", cc.clientID, "err", err)
			return
		}
		if len(out) == 0 {
			continue
		}
		// A node paused while the request was handled answers only once resumed, as a stopped process would.
		if n.gate.wait(ctx) != nil {
			return
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(out); err != nil {
			if ctx.Err() == nil {
				n.log.Info("closing client connection: write failed", "remote", cc.remote, "err", err)
			}
			return
		}
		if cap(out) > maxKeptBufferBytes {
			out = nil // do not pin a large fetch response buffer for the connection's lifetime
		}
		if cap(cc.readBuf) > maxKeptBufferBytes {
			cc.readBuf = nil
		}
	}
}

// readFrame reads one size-prefixed frame, bounded by maxBytes, allocating as the bytes arrive.
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(sz[:]))
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", errFrameNegative, size)
	}
	if size > maxBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", errFrameTooLarge, size, maxBytes)
	}
	if size < minRequestHeaderBytes {
		return nil, fmt.Errorf("%w: %d bytes", errFrameTooSmall, size)
	}
	buf := make([]byte, min(int(size), frameReadStep))
	read := 0
	for {
		if _, err := io.ReadFull(r, buf[read:]); err != nil {
			return nil, fmt.Errorf("reading a %d-byte frame: %w", size, noEOF(err))
		}
		read = len(buf)
		if read == int(size) {
			return buf, nil
		}
		buf = append(buf, make([]byte, min(int(size)-read, max(read, frameReadStep)))...)
	}
}

// noEOF turns a clean EOF inside a frame into ErrUnexpectedEOF: the frame was truncated.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// requestHeader is a parsed request header (v1, or v2 with tagged fields for flexible requests).
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

// parseRequestHeader splits a frame into its header and body. The header is v2 (tagged fields after the
// client id) when the request at that version is flexible; versions kmsg does not know are treated as
// flexible when the key's highest known version is, as Kafka does for ApiVersions.
func parseRequestHeader(frame []byte) (requestHeader, []byte, error) {
	if len(frame) < minRequestHeaderBytes {
		return requestHeader{}, nil, errFrameTooSmall
	}
	h := requestHeader{
		key:           int16(binary.BigEndian.Uint16(frame[0:])),
		version:       int16(binary.BigEndian.Uint16(frame[2:])),
		correlationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	rest := frame[8:]
	idLen := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return h, nil, fmt.Errorf("%w: client id of %d bytes overruns the frame", errBadHeader, idLen)
		}
		h.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	} else if idLen < -1 {
		return h, nil, fmt.Errorf("%w: client id length %d", errBadHeader, idLen)
	}
	req := kmsg.RequestForKey(h.key)
	if req == nil {
		return h, nil, nil // unknown key: the caller rejects it; the body is never looked at
	}
	req.SetVersion(min(max(h.version, 0), req.MaxVersion()))
	if !req.IsFlexible() {
		return h, rest, nil
	}
	n, size := binary.Uvarint(rest)
	if size <= 0 {
		return h, nil, fmt.Errorf("%w: tagged field count", errBadHeader)
	}
	rest = rest[size:]
	for range n {
		_, size := binary.Uvarint(rest) // tag
		if size <= 0 {
			return h, nil, fmt.Errorf("%w: tagged field tag", errBadHeader)
		}
		rest = rest[size:]
		l, size := binary.Uvarint(rest)
		if size <= 0 || l > uint64(len(rest)-size) {
			return h, nil, fmt.Errorf("%w: tagged field length", errBadHeader)
		}
		rest = rest[size+int(l):]
	}
	return h, rest, nil
}

// handleFrame parses and dispatches one request and appends the framed response to out. An empty result
// means no response (acks=0); an error means the connection must close.
func (n *Node) handleFrame(cc *connCtx, frame []byte, out []byte) ([]byte, error) {
	h, body, err := parseRequestHeader(frame)
	if err != nil {
		return nil, err
	}
	cc.clientID, cc.version, cc.correlationID = h.clientID, h.version, h.correlationID
	var hd *apiHandler
	if h.key >= 0 && h.key < maxAPIKey {
		hd = handlers[h.key]
	}
	if hd == nil {
		return nil, fmt.Errorf("unsupported API key %d (%s) v%d", h.key, kmsg.NameForKey(h.key), h.version)
	}
	if h.version < hd.minVersion || h.version > hd.maxVersion {
		if h.key == kmsg.ApiVersions.Int16() {
			// Kafka answers an ApiVersions it cannot parse with a v0 body carrying UNSUPPORTED_VERSION and
			// the versions it does serve, so the client can retry with a version both speak.
			resp := apiVersionsResponse(0)
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			return appendResponse(out, h, resp), nil
		}
		return nil, fmt.Errorf("unsupported version %d of %s (serving %d..%d)", h.version,
			kmsg.NameForKey(h.key), hd.minVersion, hd.maxVersion)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if err := req.ReadFrom(body); err != nil {
		if err.Error() == kmsgShortBody {
			// kmsg words it for the responses it usually decodes.
			err = errors.New("the body ends before the fields it declares")
		}
		return nil, fmt.Errorf("malformed %s v%d request: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	resp, err := hd.serve(n, cc, req)
	if err != nil {
		return nil, fmt.Errorf("serving %s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	if resp == nil {
		return out, nil
	}
	resp.SetVersion(h.version)
	return appendResponse(out, h, resp), nil
}

// appendResponse frames resp: size, correlation id, the v1 header's empty tagged fields for flexible
// responses (ApiVersions always uses header v0, so a client that does not yet know our versions can read it).
func appendResponse(out []byte, h requestHeader, resp kmsg.Response) []byte {
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(h.correlationID))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}
