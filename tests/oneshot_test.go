package tests

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// oneShotEnv makes git-credential-authagent and docker-credential-authagent links to bin
// in a directory of their own and puts it first on e's PATH. It returns the environment
// and the directory.
func oneShotEnv(t testing.TB, e *env, bin string) ([]string, string) {
	t.Helper()
	dir := shortTempDir(t)
	for _, name := range []string{"git-credential-authagent", "docker-credential-authagent"} {
		if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return prependPath(e.environ(), dir), dir
}

// oneShotCalls are the command lines of the one-shot commands as other programs run them,
// right and wrong, each with its standard input.
var oneShotCalls = []struct {
	name, stdin string
	args        []string
}{
	{"token", "", []string{"token", "hub"}},
	{"token min-valid", "", []string{"token", "hub", "--min-valid", "30s"}},
	{"token min-valid=", "", []string{"token", "--min-valid=30s", "hub"}},
	{"token socket", "", []string{"--socket", "SOCK", "token", "hub"}},
	{"token id-token of an apikey profile", "", []string{"token", "hub", "--id-token"}},
	{"token unknown profile", "", []string{"token", "nope"}},
	{"token no name", "", []string{"token"}},
	{"token help", "", []string{"token", "--help"}},
	{"token bad flag", "", []string{"token", "hub", "--min-vald", "3s"}},
	{"token bad duration", "", []string{"token", "hub", "--min-valid", "soon"}},
	{"header", "", []string{"header", "hub"}},
	{"header unknown profile", "", []string{"header", "nope"}},
	{"kube-credential", "", []string{"kube-credential", "hub"}},
	{"kube-credential unknown profile", "", []string{"kube-credential", "nope"}},
	{"git get", "protocol=https\nhost=api.example.com\n\n", []string{"git-credential", "get"}},
	{"git get other host", "protocol=https\nhost=other.example.org\n\n", []string{"git-credential", "get"}},
	{"git get bad input", "no equals sign\n", []string{"git-credential", "get"}},
	{"git store", "protocol=https\nhost=api.example.com\nusername=u\npassword=p\n\n", []string{"git-credential", "store"}},
	{"git erase other token", "protocol=https\nhost=api.example.com\npassword=old\n\n", []string{"git-credential", "erase"}},
	{"docker get", "api.example.com\n", []string{"docker-credential", "get"}},
	{"docker get not ours", "registry.example.org\n", []string{"docker-credential", "get"}},
	{"docker list", "", []string{"docker-credential", "list"}},
	{"docker store", `{"ServerURL":"x","Username":"u","Secret":"s"}`, []string{"docker-credential", "store"}},
	{"docker bad op", "", []string{"docker-credential", "frob"}},
	{"bazel get", `{"uri":"https://api.example.com/x"}`, []string{"credential-helper", "get"}},
	{"bazel other uri", `{"uri":"https://other.example.org/x"}`, []string{"credential-helper", "get"}},
	{"bazel bad op", `{}`, []string{"credential-helper", "put"}},
	{"list (handed over)", "", []string{"list"}},
	{"status (handed over)", "", []string{"status"}},
	{"mistyped command", "", []string{"tokn", "hub"}},
}

// TestOneShotSameAsFull: the one-shot front (installed as authagent, and as the git and
// Docker helpers) answers every call exactly as the full binary does: the same standard
// output, standard error and exit status, for calls that work, calls the agent refuses,
// calls it hands over to the full binary, and with no agent at all.
func TestOneShotSameAsFull(t *testing.T) {
	e := newEnv(t, nil)
	writeConfig(t, e, "secret_store = \"memory\"\n")
	startAgent(t, e)
	addAPIKey(t, e, "hub", canary(t), hubFlags()...)
	viaFront, frontLinks := oneShotEnv(t, e, authagentBin)
	viaFull, fullLinks := oneShotEnv(t, e, fullBin)
	noAgent := e.with("AUTHAGENT_SOCK", filepath.Join(e.dir, "none", "agent.sock"))
	noAgentFront, _ := oneShotEnv(t, noAgent, authagentBin)
	noAgentFull, _ := oneShotEnv(t, noAgent, fullBin)
	for _, tc := range oneShotCalls {
		args := slices.Clone(tc.args)
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "SOCK", e.sock())
		}
		for _, setup := range []struct {
			name                string
			front, full         []string
			frontBin, fullBinNm string
		}{
			{"", viaFront, viaFull, authagentBin, fullBin},
			{"no agent: ", noAgentFront, noAgentFull, authagentBin, fullBin},
		} {
			front := runIn(t, setup.front, e.dir, tc.stdin, setup.frontBin, args...)
			full := runIn(t, setup.full, e.dir, tc.stdin, setup.fullBinNm, args...)
			if front != full {
				t.Errorf("%s%s: the front answered\n%s\nthe full binary\n%s", setup.name, tc.name, front, full)
			}
		}
	}
	// As git and Docker find them: by the helper's name.
	for _, h := range []struct{ name, stdin string }{
		{"git-credential-authagent", "protocol=https\nhost=api.example.com\n\n"},
		{"docker-credential-authagent", "api.example.com"},
	} {
		front := runIn(t, viaFront, e.dir, h.stdin, filepath.Join(frontLinks, h.name), "get")
		full := runIn(t, viaFull, e.dir, h.stdin, filepath.Join(fullLinks, h.name), "get")
		if front != full || front.code != 0 || front.stdout == "" {
			t.Errorf("%s get: the front answered\n%s\nthe full binary\n%s", h.name, front, full)
		}
	}
}

// TestBinariesStatic: Linux builds are static (no cgo), so they start without a dynamic
// loader, and the tray works without one.
func TestBinariesStatic(t *testing.T) {
	for _, bin := range []string{authagentBin, fullBin} {
		if err := checkStatic(bin); err != nil {
			t.Errorf("%s: %v", bin, err)
		}
	}
}

// BenchmarkOneShotStart: each command that other programs run once per use, started as
// they start it, against a static Go hello-world (the floor: a Go program that does
// nothing) built the same way and run in the same loop, one after the other (in turn
// from a different first one), so that load from elsewhere on the machine hits all alike. It reports each command's median in ms
// and its ratio to the floor's median (x-hello). Goal (issue 13): every ratio at most 1.5,
// stretch 1.2; read it off the figures, it is never asserted. "full-token" is `token`
// through the full binary, as every command ran before the one-shot front.
func BenchmarkOneShotStart(b *testing.B) {
	hello := buildHello(b)
	e := newEnv(b, nil)
	writeConfig(b, e, "secret_store = \"memory\"\n")
	startAgent(b, e)
	addAPIKey(b, e, "hub", canary(b), hubFlags()...)
	environ, links := oneShotEnv(b, e, authagentBin)
	type cmd struct {
		name, stdin string
		argv        []string
	}
	cmds := []cmd{
		{"hello", "", []string{hello}},
		{"git", "protocol=https\nhost=api.example.com\n\n", []string{filepath.Join(links, "git-credential-authagent"), "get"}},
		{"token", "", []string{authagentBin, "token", "hub"}},
		{"header", "", []string{authagentBin, "header", "hub"}},
		{"docker", "api.example.com", []string{filepath.Join(links, "docker-credential-authagent"), "get"}},
		{"bazel", `{"uri":"https://api.example.com/x"}`, []string{authagentBin, "credential-helper", "get"}},
		{"kube", "", []string{authagentBin, "kube-credential", "hub"}},
		{"full-token", "", []string{fullBin, "token", "hub"}},
	}
	lat := make([][]time.Duration, len(cmds))
	for round := 0; b.Loop(); round++ {
		for k := range cmds {
			i := (round + k) % len(cmds) // each command takes each place in turn
			c := cmds[i]
			cmd := exec.Command(c.argv[0], c.argv[1:]...)
			cmd.Env, cmd.Dir = environ, e.dir
			cmd.Stdin = strings.NewReader(c.stdin)
			start := time.Now()
			out, err := cmd.Output()
			lat[i] = append(lat[i], time.Since(start))
			if err != nil || len(out) == 0 {
				b.Fatalf("%s: %v, output %q", c.name, err, out)
			}
		}
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	floor := median(lat[0])
	for i, c := range cmds {
		m := median(lat[i])
		b.ReportMetric(float64(m)/float64(time.Millisecond), c.name+"-ms")
		if i > 0 {
			b.ReportMetric(float64(m)/float64(floor), c.name+"-x-hello")
		}
	}
}

// buildHello builds a static Go program that prints a line and exits, as the harness
// builds authagent.
func buildHello(t testing.TB) string {
	t.Helper()
	dir := shortTempDir(t)
	src := "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello\\n\") }\n"
	for name, body := range map[string]string{"go.mod": "module hello\n\ngo 1.22\n", "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hello: %v\n%s", err, out)
	}
	return bin
}

var errDynamic = errors.New("dynamically linked (it names a program interpreter); build it with CGO_ENABLED=0")

// checkStatic says why the ELF binary at path is not static: it names a dynamic loader
// (PT_INTERP), as a cgo build does.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errDynamic
		}
	}
	return nil
}
