package server

import (
	"bufio"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
)

// routeListFile is the socket API's route list that tests/socket_test.go tries as a second
// user; TestRouteList keeps it equal to the table in Server.Handler.
const routeListFile = "../testdata/routes.txt"

// readRouteList returns the "METHOD /pattern" lines of routeListFile.
func readRouteList(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(routeListFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var routes []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		routes = append(routes, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return routes
}

// handlerTable reads the patterns of the route table in Server.Handler from server.go,
// and checks that nothing else in the package registers a route.
func handlerTable(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var handler *ast.FuncDecl
	var registrations []token.Pos
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.Name == "Handler" {
				handler = fd
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "HandleFunc" || sel.Sel.Name == "Handle") {
					registrations = append(registrations, call.Pos())
				}
			}
			return true
		})
	}
	if handler == nil {
		t.Fatal("no Server.Handler in package ipc")
	}
	// One registration: the loop over the table in Handler.
	inHandler := 0
	for _, pos := range registrations {
		if pos >= handler.Body.Pos() && pos <= handler.Body.End() {
			if inHandler++; inHandler == 1 {
				continue
			}
		}
		t.Errorf("%s registers a route; register routes only as rows of Server.Handler's table, so the route list covers them", fset.Position(pos))
	}
	var patterns []string
	ast.Inspect(handler.Body, func(n ast.Node) bool {
		table, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if _, ok := table.Type.(*ast.ArrayType); !ok {
			return true
		}
		for _, el := range table.Elts {
			row, ok := el.(*ast.CompositeLit)
			var lit *ast.BasicLit
			if ok && len(row.Elts) > 0 {
				lit, _ = row.Elts[0].(*ast.BasicLit)
			}
			if lit == nil || lit.Kind != token.STRING {
				t.Fatalf("%s: a row of Handler's route table does not start with its pattern as a string literal; this test reads them", fset.Position(el.Pos()))
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			patterns = append(patterns, p)
		}
		return false
	})
	if len(patterns) == 0 {
		t.Fatal("found no route table in Server.Handler")
	}
	return patterns
}

// TestRouteList: the route list that the second-user test walks is Handler's table, row
// for row. A new endpoint fails here until it is in testdata/routes.txt, and from there
// tests/socket_test.go tries it as another user.
func TestRouteList(t *testing.T) {
	got, want := readRouteList(t), handlerTable(t)
	if !slices.Equal(got, want) {
		var missing, extra []string
		for _, r := range want {
			if !slices.Contains(got, r) {
				missing = append(missing, r)
			}
		}
		for _, r := range got {
			if !slices.Contains(want, r) {
				extra = append(extra, r)
			}
		}
		t.Errorf("%s is not Server.Handler's route table: missing %q, not served %q; want, in the table's order:\n%s",
			routeListFile, missing, extra, strings.Join(want, "\n"))
	}
}

// routePath makes a request path from a pattern: {name} is the profile hub.
func routePath(pattern string) string {
	return strings.ReplaceAll(pattern, "{name}", "hub")
}

// ask sends one request on a connection of its own and returns the status and, for an
// error, its code and the whole answer. An event stream is not read past its header.
func ask(t *testing.T, sock, method, path string) (status int, code, answer string) {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	var body io.Reader
	if method == http.MethodPut || method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, "http://authagent"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		return resp.StatusCode, "", ""
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	var eb errorBody
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%s %s: %d with a body not in the error shape: %s", method, path, resp.StatusCode, b)
		}
		code = eb.Error.Code
	}
	return resp.StatusCode, code, string(b)
}

// TestRouteListServed checks the list against the running mux as well: every route in it
// reaches a handler (no 404 not_found or 405 method_not_allowed), and every other method on
// a listed path gets 405, so no method of a listed path is missing from the list.
func TestRouteListServed(t *testing.T) {
	routes := readRouteList(t)
	e := startServer(t, nil)
	methods := map[string][]string{} // pattern → methods listed
	for _, r := range routes {
		method, pattern, ok := strings.Cut(r, " ")
		if !ok {
			t.Fatalf("%s: %q is not METHOD /pattern", routeListFile, r)
		}
		methods[pattern] = append(methods[pattern], method)
		status, code, _ := ask(t, e.sock, method, routePath(pattern))
		if code == ipc.CodeNotFound || code == ipc.CodeMethodNotAllowed {
			t.Errorf("%s: %d %s; the list names a route the agent does not serve", r, status, code)
		}
	}
	for pattern, listed := range methods {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			if slices.Contains(listed, m) {
				continue
			}
			if status, code, _ := ask(t, e.sock, m, routePath(pattern)); status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d %s, want 405: the agent serves a method the list lacks", m, pattern, status, code)
			}
		}
	}
}

// TestEveryRouteForbiddenToOtherUID: with the agent set to serve another uid, every route
// of the list, and paths and methods the API does not have, get 403 forbidden before any
// handler runs, and no answer holds the secret. (tests/socket_test.go does the same with
// a real second user.)
func TestEveryRouteForbiddenToOtherUID(t *testing.T) {
	other := os.Getuid() + 1
	e := startServer(t, &other)
	routes := append(readRouteList(t), "GET /", "GET /v1/nope", "POST /v1/status", "PATCH /v1/profiles/{name}", "GET /v2/status")
	for _, r := range routes {
		method, pattern, _ := strings.Cut(r, " ")
		status, code, answer := ask(t, e.sock, method, routePath(pattern))
		if status != http.StatusForbidden || code != ipc.CodeForbidden {
			t.Errorf("%s from another uid: %d %q, want 403 forbidden: %s", r, status, code, answer)
		}
		if strings.Contains(answer, canary) {
			t.Errorf("%s from another uid: the answer holds the secret: %s", r, answer)
		}
	}
	if v, err := e.store.Get(context.Background(), "hub/secret"); err != nil || v != canary {
		t.Errorf("hub's secret after the refused requests: %q, %v; want it unchanged", v, err)
	}
	if infos := e.a.Profiles(); len(infos) != 1 || infos[0].Name != "hub" {
		t.Errorf("profiles after the refused requests: %+v, want hub alone", infos)
	}
}
