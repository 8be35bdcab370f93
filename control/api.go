package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// DefaultSocket is where xleafd answers xleafctl.
const DefaultSocket = "/run/xleaf/xleafd.sock"

// Request is one xleafctl command, as words ("show route vrf RED").
type Request struct {
	Args []string `json:"args"`
}

// Response carries the command's data (a show type as JSON) or an error.
type Response struct {
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Reloader re-reads the configuration file (xleafctl config apply).
type Reloader func(ctx context.Context) error

// Serve answers requests on a root-only unix socket until ctx ends.
func (a *Agent) Serve(ctx context.Context, path string, reload Reloader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	os.Remove(path) // a socket left by a crashed run
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("socket permissions: %w", err)
	}
	go func() { <-ctx.Done(); l.Close() }()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go a.answer(ctx, c, reload)
	}
}

func (a *Agent) answer(ctx context.Context, c net.Conn, reload Reloader) {
	defer c.Close()
	var req Request
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		json.NewEncoder(c).Encode(Response{Error: "bad request: " + err.Error()})
		return
	}
	data, err := a.Do(ctx, req.Args, reload)
	resp := Response{}
	if err != nil {
		resp.Error = err.Error()
	} else if resp.Data, err = json.Marshal(data); err != nil {
		resp.Error = err.Error()
	}
	json.NewEncoder(c).Encode(resp)
}

// Do runs one command and returns its show value.
func (a *Agent) Do(ctx context.Context, args []string, reload Reloader) (any, error) {
	c, cargs, ok := Match(args)
	if !ok {
		return nil, ErrUsage
	}
	return c.Run(ctx, a, cargs, reload)
}

// Call sends one command to xleafd at path and returns its raw data.
func Call(path string, args []string) (json.RawMessage, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to xleafd at %s (is it running? are you root?): %w", path, err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(Request{Args: args}); err != nil {
		return nil, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("read xleafd's answer: %w", err)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return resp.Data, nil
}
