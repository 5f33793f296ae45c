package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultProbeTimeout bounds Available's ping when the caller's context has no earlier deadline.
const DefaultProbeTimeout = 3 * time.Second

// Available reports nil when a Docker engine answers GET /_ping at DOCKER_HOST (default the local socket
// /var/run/docker.sock) within DefaultProbeTimeout, and otherwise an error saying where it looked and why it
// failed. Tests skip on its error; Start calls it first so a missing engine is a clear error, not a hang.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultProbeTimeout)
	defer cancel()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("docker: DOCKER_HOST %q: %w", host, err)
	}
	var network, addr string
	switch u.Scheme {
	case "unix":
		network, addr = "unix", u.Path
	case "tcp", "http":
		network, addr = "tcp", u.Host
	default:
		return fmt.Errorf("docker: DOCKER_HOST %q: scheme %q is not probed (want unix or tcp)", host, u.Scheme)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return fmt.Errorf("docker: building the ping request: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("docker: no engine answers at %s: %w", host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "OK" {
		return fmt.Errorf("docker: engine at %s answered the ping with %s %q", host, resp.Status, body)
	}
	return nil
}
