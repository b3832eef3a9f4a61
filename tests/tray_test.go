package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// startBus runs a private D-Bus session bus (nothing else on it, no service activation)
// and returns its address.
func startBus(t testing.TB) string {
	t.Helper()
	needTools(t, "dbus-daemon")
	return runBus(t, shortTempDir(t), []string{"PATH=" + os.Getenv("PATH")}, &syncBuffer{})
}

// busConn connects the test to the bus at addr.
func busConn(t testing.TB, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to the test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ownName(t testing.TB, conn *dbus.Conn, name string) {
	t.Helper()
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s on the test bus: %v (reply %v)", name, err, reply)
	}
}

// snWatcher plays org.kde.StatusNotifierWatcher, where tray icons register.
type snWatcher struct {
	items chan string // "busname/path" of each registration
}

func (w *snWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	if !strings.HasPrefix(service, "/") { // a bus name rather than a path
		w.items <- service + "/StatusNotifierItem"
	} else {
		w.items <- string(sender) + service
	}
	return nil
}

func (w *snWatcher) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

func exportWatcher(t testing.TB, conn *dbus.Conn) *snWatcher {
	t.Helper()
	w := &snWatcher{items: make(chan string, 10)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	ownName(t, conn, "org.kde.StatusNotifierWatcher")
	return w
}

// notification is one call of Notify.
type notification struct {
	id            uint32
	replaces      uint32
	summary, body string
	timeout       int32
}

// notificationServer plays org.freedesktop.Notifications and keeps what it was told.
type notificationServer struct {
	mu     sync.Mutex
	shown  []notification
	closed []uint32
	next   uint32
}

func (n *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := replaces
	if id == 0 {
		n.next++
		id = n.next
	}
	n.shown = append(n.shown, notification{id: id, replaces: replaces, summary: summary, body: body, timeout: timeout})
	return id, nil
}

func (n *notificationServer) CloseNotification(id uint32) *dbus.Error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = append(n.closed, id)
	return nil
}

func (n *notificationServer) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

func (n *notificationServer) GetServerInformation() (name, vendor, version, spec string, err *dbus.Error) {
	return "authagent-e2e", "authagent", "1", "1.2", nil
}

func (n *notificationServer) all() ([]notification, []uint32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.shown), slices.Clone(n.closed)
}

// find returns the notifications whose summary or body contains s.
func (n *notificationServer) find(s string) []notification {
	shown, _ := n.all()
	var out []notification
	for _, x := range shown {
		if strings.Contains(x.summary+"\n"+x.body, s) {
			out = append(out, x)
		}
	}
	return out
}

func exportNotifications(t testing.TB, conn *dbus.Conn) *notificationServer {
	t.Helper()
	n := &notificationServer{}
	if err := conn.Export(n, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	ownName(t, conn, "org.freedesktop.Notifications")
	return n
}

// menuNode is one entry of a com.canonical.dbusmenu layout.
type menuNode struct {
	id       int32
	label    string
	enabled  bool
	visible  bool
	sep      bool
	children []menuNode
}

// dbusMenu reads and clicks a tray item's menu over com.canonical.dbusmenu, as a panel does.
type dbusMenu struct {
	obj dbus.BusObject
}

func (m dbusMenu) layout(t testing.TB) menuNode {
	t.Helper()
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	err := m.obj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root)
	if err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	return toNode(t, root.ID, root.Props, root.Children)
}

func toNode(t testing.TB, id int32, props map[string]dbus.Variant, children []dbus.Variant) menuNode {
	n := menuNode{id: id, enabled: true, visible: true}
	if v, ok := props["label"].Value().(string); ok {
		n.label = v
	}
	if v, ok := props["enabled"].Value().(bool); ok {
		n.enabled = v
	}
	if v, ok := props["visible"].Value().(bool); ok {
		n.visible = v
	}
	if v, ok := props["type"].Value().(string); ok && v == "separator" {
		n.sep = true
	}
	for _, c := range children {
		// A child is a (ia{sv}av) struct in a variant.
		f, ok := c.Value().([]any)
		if !ok || len(f) != 3 {
			t.Fatalf("GetLayout: a child is %T, not a (ia{sv}av)", c.Value())
		}
		cid, _ := f[0].(int32)
		cprops, _ := f[1].(map[string]dbus.Variant)
		cchildren, _ := f[2].([]dbus.Variant)
		n.children = append(n.children, toNode(t, cid, cprops, cchildren))
	}
	return n
}

// find returns the visible entry whose label starts with prefix, searching submenus too.
func (n menuNode) find(prefix string) (menuNode, bool) {
	for _, c := range n.children {
		if !c.visible {
			continue
		}
		if !c.sep && strings.HasPrefix(c.label, prefix) {
			return c, true
		}
		if found, ok := c.find(prefix); ok {
			return found, true
		}
	}
	return menuNode{}, false
}

// child returns the visible entry labelled label right under n.
func (n menuNode) child(label string) (menuNode, bool) {
	for _, c := range n.children {
		if c.visible && !c.sep && c.label == label {
			return c, true
		}
	}
	return menuNode{}, false
}

// String shows what a user would see of the menu, one entry a line.
func (n menuNode) String() string {
	var b strings.Builder
	var walk func(menuNode, string)
	walk = func(n menuNode, indent string) {
		for _, c := range n.children {
			switch {
			case !c.visible:
			case c.sep:
				fmt.Fprintf(&b, "%s----\n", indent)
			default:
				off := ""
				if !c.enabled {
					off = " (disabled)"
				}
				fmt.Fprintf(&b, "%s%s%s\n", indent, c.label, off)
				walk(c, indent+"    ")
			}
		}
	}
	walk(n, "")
	return b.String()
}

// waitEntry waits until the menu has a visible entry starting with prefix for which ok
// holds (nil: any).
func (m dbusMenu) waitEntry(t testing.TB, prefix string, ok func(menuNode) bool) menuNode {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := m.layout(t)
		if n, found := l.find(prefix); found && (ok == nil || ok(n)) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no menu entry %q within 20s; the menu:\n%s", prefix, l)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m dbusMenu) click(t testing.TB, n menuNode) {
	t.Helper()
	call := m.obj.Call("com.canonical.dbusmenu.Event", 0, n.id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		t.Fatalf("click %q: %v", n.label, call.Err)
	}
}

// trayProcess is a running `authagent tray`.
type trayProcess struct {
	proc   *process
	log    *syncBuffer
	opened string // the file where the fake xdg-open writes what it was asked to open
}

// startTray runs `authagent tray` in e on the bus at busAddr, with an xdg-open that
// only writes down what it is asked to open.
func startTray(t testing.TB, e *env, busAddr string, extraEnv []string, args ...string) *trayProcess {
	t.Helper()
	bin := filepath.Join(e.dir, "fakebin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	tp := &trayProcess{log: &syncBuffer{}, opened: filepath.Join(e.dir, "opened")}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> " + tp.opened + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	environ := slices.DeleteFunc(e.environ(), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	environ = append(environ, "PATH="+bin+":"+filepath.Dir(authagentBin)+":"+os.Getenv("PATH"), "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	environ = append(environ, extraEnv...)
	cmd := exec.Command(authagentBin, append([]string{"tray", "--log-level", "debug"}, args...)...)
	cmd.Env, cmd.Dir = environ, e.dir
	cmd.Stdout, cmd.Stderr = tp.log, tp.log
	tp.proc = startProcess(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of authagent tray:\n%s", tp.log)
		}
	})
	return tp
}

func (tp *trayProcess) openedTargets() []string {
	b, _ := os.ReadFile(tp.opened)
	return strings.Fields(string(b))
}

// waitRegistered waits for the tray to register with the watcher and returns its menu.
func waitRegistered(t testing.TB, conn *dbus.Conn, w *snWatcher, tp *trayProcess) (dbus.BusObject, dbusMenu) {
	t.Helper()
	var item string
	select {
	case item = <-w.items:
	case <-tp.proc.done:
		t.Fatalf("authagent tray exited (%v):\n%s", tp.proc.err, tp.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("the tray did not register with the StatusNotifierWatcher within 20s:\n%s", tp.log)
	}
	i := strings.Index(item, "/")
	sni := conn.Object(item[:i], dbus.ObjectPath(item[i:]))
	v, err := sni.GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		t.Fatalf("the tray item's Menu property: %v", err)
	}
	path, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		t.Fatalf("the tray item's Menu is %T, want an object path", v.Value())
	}
	return sni, dbusMenu{obj: conn.Object(item[:i], path)}
}

// A panel's view of the tray: it registers as a StatusNotifierItem, its menu is read and
// clicked over com.canonical.dbusmenu, and its notifications go to the notification
// server. Log in starts a device login in the agent, the menu shows the code, a
// notification carries it until the login ends; the tray follows the agent through a
// stop and "Start agent".
func TestTrayMenuLoginOverDBus(t *testing.T) {
	t.Parallel()
	busAddr := startBus(t)
	conn := busConn(t, busAddr)
	watcher := exportWatcher(t, conn)
	notes := exportNotifications(t, conn)

	provider := idp.Start(t, idp.Options{AccessTokenLifetime: time.Hour})
	e := newEnv(t, nil)
	if err := os.MkdirAll(filepath.Dir(e.configPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.configPath(), []byte("secret_store = \"memory\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := startAgent(t, e)
	runOK(t, e, "", "add", "work", "--provider", "devicecode", "--issuer", provider.Issuer(),
		"--client-id", provider.ClientID(), "--host", "api.example.com")
	api := &ipc.Client{Socket: e.sock()}

	tp := startTray(t, e, busAddr, nil, "--panel", "light")
	sni, menu := waitRegistered(t, conn, watcher, tp)

	if v, err := sni.GetProperty("org.kde.StatusNotifierItem.Id"); err != nil || v.Value() != "authagent" {
		t.Errorf("Id = %v (%v), want authagent", v, err)
	}
	waitFor(t, "one 22×22 icon pixmap", func() bool {
		var pixmaps []struct {
			W, H int32
			Pix  []byte
		}
		v, err := sni.GetProperty("org.kde.StatusNotifierItem.IconPixmap")
		return err == nil && dbus.Store([]any{v.Value()}, &pixmaps) == nil && len(pixmaps) == 1 && pixmaps[0].W == 22 && len(pixmaps[0].Pix) == 22*22*4
	})

	// The profile needs a login: the menu says so and offers it; one notification says so.
	// (The first GetLayout may leave out submenus: fyne systray's workaround for
	// libdbusmenu-gtk3. Waiting for the child covers that.)
	profile := menu.waitEntry(t, "work — needs login", func(n menuNode) bool {
		c, ok := n.child("Log in")
		return ok && c.enabled
	})
	login, _ := profile.child("Log in")
	if n, _ := menu.layout(t).find("Log in to all that need it"); !n.enabled {
		t.Errorf("\"Log in to all that need it\" is disabled while work needs a login")
	}
	waitFor(t, "the \"log in to work\" notification", func() bool { return len(notes.find("Log in to work")) > 0 })
	// The tooltip is set after the menu; wait for it rather than read it once.
	waitFor(t, "a tooltip that says work needs a login", func() bool {
		tip, err := sni.GetProperty("org.kde.StatusNotifierItem.ToolTip")
		return err == nil && strings.Contains(fmt.Sprint(tip.Value()), "work needs login")
	})

	menu.click(t, login)

	// The agent runs the login; the browser opens on the verification page.
	var code, page string
	waitFor(t, "a login in the agent", func() bool {
		p, err := api.Profile(t.Context(), "work")
		if err != nil || p.State != ipc.StateLoginPending || p.Login == nil {
			return false
		}
		code, page = p.Login.UserCode, p.Login.VerificationURIComplete
		if page == "" {
			page = p.Login.VerificationURI
		}
		return true
	})
	waitFor(t, "xdg-open on the verification page", func() bool { return len(tp.openedTargets()) > 0 })
	if got := tp.openedTargets(); !slices.Equal(got, []string{page}) {
		t.Errorf("opened %q, want the verification page %q", got, page)
	}

	// The code shows in the menu and in a notification.
	menu.waitEntry(t, "Code: "+code, nil)
	menu.waitEntry(t, "work — waiting for login, code "+code, nil)
	waitFor(t, "a notification with the code", func() bool { return len(notes.find(code)) > 0 })
	codeNote := notes.find(code)[0]

	// The user enters the code: the login ends, the code goes away.
	if err := provider.Approve(code); err != nil {
		t.Fatalf("approve %s: %v", code, err)
	}
	valid := menu.waitEntry(t, "work — valid, expires in ", nil)
	if !strings.Contains(valid.label, " min") {
		t.Errorf("profile entry %q, want the time left", valid.label)
	}
	if _, found := menu.layout(t).find("Code: "); found {
		t.Errorf("the code is still in the menu:\n%s", menu.layout(t))
	}
	waitFor(t, "the code notification closed", func() bool {
		_, closed := notes.all()
		return slices.Contains(closed, codeNote.id)
	})
	if n := len(notes.find("needs you to log in")); n != 1 {
		t.Errorf("%d \"needs you to log in\" notifications for one need, want 1", n)
	}

	// The agent goes away: the tray says so and offers to start one.
	agent.Stop()
	start := menu.waitEntry(t, "Start agent", nil)
	menu.waitEntry(t, "No agent is running", nil)
	menu.click(t, start)
	var pid int
	waitFor(t, "an agent started from the tray", func() bool {
		st, err := api.Status(t.Context())
		if err == nil {
			pid = st.PID
		}
		return err == nil
	})
	t.Cleanup(func() { stopPID(t, pid) })
	// Secrets were in memory: the new agent has the profile but not the login.
	menu.waitEntry(t, "work — needs login", nil)
	if tp.proc.exited() {
		t.Fatalf("authagent tray exited: %v", tp.proc.err)
	}

	// SIGTERM ends the tray cleanly.
	if !tp.proc.signal(syscall.SIGTERM, 10*time.Second) {
		t.Fatalf("authagent tray did not stop within 10s of SIGTERM:\n%s", tp.log)
	}
	if tp.proc.err != nil {
		t.Errorf("authagent tray exited with %v:\n%s", tp.proc.err, tp.log)
	}
}

// stopPID stops an agent this test did not start as a child (`authagent start` detaches it).
func stopPID(t testing.TB, pid int) {
	if pid <= 0 {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("the agent started from the tray (pid %d) did not stop within 15s of SIGTERM", pid)
}

// alive reports whether process pid runs; a zombie nobody has reaped yet does not.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	_, rest, _ := cutLast(string(b), ")")
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
