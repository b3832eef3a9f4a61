// Package oneshot is a client of the agent's socket API for programs that call the agent
// once or twice and exit: the credential helpers that git, Docker, Bazel and kubectl run
// for every request, and `authagent token` and `header`. Each call opens a connection of
// its own (after the same server check as package ipc), sends one HTTP/1.1 request with
// "Connection: close" and reads the answer with net/textproto. It links no net/http,
// whose start-up cost such a program would pay on every run; long-lived programs use
// ipc.Client, which keeps connections alive.
package oneshot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/authagent/authagent/ipc/wire"
)

// Client calls the agent on Socket (default: wire.DefaultSocketPath()). Its zero value
// works. It keeps its connection for the next call; Close it when done. It is not safe
// for concurrent use.
type Client struct {
	Socket string
	// Prompt, when not "", is sent as wire.HeaderPrompt: "handover" says that on 403
	// confirm_required the program hands the command over to the full binary, which asks
	// the user on the terminal.
	Prompt string
	check  wire.ServerCheck
	conn   net.Conn // nil until the first call, and after an answer that ends the connection
	br     *bufio.Reader
}

// Close closes the connection the client keeps.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return wire.DefaultSocketPath()
}

// maxBodyBytes bounds an answer's body; the agent's answers are far smaller.
const maxBodyBytes = 16 << 20

// Credential returns a profile's current credential, as ipc.Client.Credential does.
func (c *Client) Credential(ctx context.Context, profile string, opts ...wire.CredentialOption) (*wire.Credential, error) {
	var cr wire.Credential
	return &cr, c.do(ctx, "GET", wire.ProfilePath(profile, "/credential"), wire.CredentialQuery(opts...), &cr)
}

// CredentialForURL returns the credential of the profile whose hosts match target's host.
func (c *Client) CredentialForURL(ctx context.Context, target string, opts ...wire.CredentialOption) (*wire.Credential, error) {
	q := wire.CredentialQuery(opts...)
	q.Set("url", target)
	var cr wire.Credential
	return &cr, c.do(ctx, "GET", "/v1/credential", q, &cr)
}

// Profile describes one profile.
func (c *Client) Profile(ctx context.Context, name string) (*wire.Profile, error) {
	var p wire.Profile
	return &p, c.do(ctx, "GET", wire.ProfilePath(name, ""), nil, &p)
}

// Profiles lists every profile.
func (c *Client) Profiles(ctx context.Context) ([]wire.Profile, error) {
	var out struct {
		Profiles []wire.Profile `json:"profiles"`
	}
	err := c.do(ctx, "GET", "/v1/profiles", nil, &out)
	return out.Profiles, err
}

// Reject tells the agent a server refused the profile's token.
func (c *Client) Reject(ctx context.Context, profile string) error {
	return c.do(ctx, "POST", wire.ProfilePath(profile, "/reject"), nil, nil)
}

// do sends one request without a body and decodes a 2xx answer into out (nil:
// discarded). A non-2xx answer is a *wire.Error; failing to reach the agent is
// wire.ConnError's. A kept connection the agent has closed meanwhile is dialled anew for a
// GET; other requests are not sent twice.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, out any) error {
	sock := c.socket()
	reused := c.conn != nil
	if !reused {
		conn, err := c.check.DialOnce(ctx, sock)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return wire.ConnError(sock, err)
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	if s, ok := c.conn.(interface{ Shutdown() error }); ok {
		stop := context.AfterFunc(ctx, func() { s.Shutdown() })
		defer stop()
	}
	a, err := exchange(c.conn, c.br, method, path, query, c.Prompt)
	if err != nil || !a.keep {
		c.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if reused && method == "GET" && a.nothingRead {
			return c.do(ctx, method, path, query, out)
		}
		return wire.ConnError(sock, err)
	}
	if a.status/100 != 2 {
		body := a.body
		if len(body) > 64<<10 {
			body = body[:64<<10]
		}
		return wire.ReadError(a.status, a.statusText, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("read agent answer to %s %s: %w", method, path, err)
	}
	return nil
}

// answer is what exchange read.
type answer struct {
	status      int
	statusText  string // "404 Not Found"
	body        []byte
	keep        bool // the connection can take the next request
	nothingRead bool // on error: not a byte of an answer came
}

// exchange writes the request on conn and reads the whole answer from br (conn's reader).
func exchange(conn net.Conn, br *bufio.Reader, method, path string, query url.Values, prompt string) (a answer, err error) {
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req := method + " " + target + " HTTP/1.1\r\nHost: authagent\r\nUser-Agent: authagent-oneshot\r\n"
	if method != "GET" {
		req += "Content-Length: 0\r\n"
	}
	if prompt != "" {
		req += wire.HeaderPrompt + ": " + prompt + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return answer{nothingRead: true}, err
	}
	if _, err := br.Peek(1); err != nil {
		return answer{nothingRead: true}, unexpectedEOF(err)
	}
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return a, unexpectedEOF(err)
	}
	proto, statusText, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(statusText) < 3 {
		return a, fmt.Errorf("malformed HTTP status line %.40q", line)
	}
	status, err := strconv.Atoi(statusText[:3])
	if err != nil || status < 100 {
		return a, fmt.Errorf("malformed HTTP status line %.40q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return a, unexpectedEOF(err)
	}
	a = answer{status: status, statusText: statusText, keep: !strings.EqualFold(h.Get("Connection"), "close")}
	switch te := strings.ToLower(h.Get("Transfer-Encoding")); {
	case te == "chunked":
		a.body, err = readChunked(br)
	case te != "":
		err = fmt.Errorf("unsupported Transfer-Encoding %q", te)
	case h.Get("Content-Length") != "":
		n, perr := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if perr != nil || n < 0 || n > maxBodyBytes {
			return a, fmt.Errorf("bad Content-Length %q", h.Get("Content-Length"))
		}
		a.body = make([]byte, n)
		_, err = io.ReadFull(br, a.body)
		err = unexpectedEOF(err)
	case status == 204 || status == 304 || status/100 == 1:
	default: // the body ends with the connection
		a.keep = false
		a.body, err = io.ReadAll(io.LimitReader(br, maxBodyBytes))
	}
	return a, err
}

// readChunked reads a chunked body (RFC 9112 §7.1) to its last chunk and skips trailers.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body bytes.Buffer
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		size, _, _ := strings.Cut(line, ";") // chunk extensions are ignored
		n, err := strconv.ParseUint(strings.TrimSpace(size), 16, 32)
		if err != nil || body.Len()+int(n) > maxBodyBytes {
			return nil, fmt.Errorf("bad chunk size %.20q", line)
		}
		if n == 0 {
			if _, err := tp.ReadMIMEHeader(); err != nil { // trailers, then the blank line
				return nil, unexpectedEOF(err)
			}
			return body.Bytes(), nil
		}
		if _, err := io.CopyN(&body, br, int64(n)); err != nil {
			return nil, unexpectedEOF(err)
		}
		if crlf, err := tp.ReadLine(); err != nil || crlf != "" {
			return nil, errors.New("chunk not followed by CRLF")
		}
	}
}

// unexpectedEOF turns io.EOF in the middle of an answer into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
