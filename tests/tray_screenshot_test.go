package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authagent/authagent/ipc"
	"github.com/authagent/authagent/tests/idp"
)

// needProgram is needTools for a program whose Debian package has another name.
func needProgram(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		if strings.HasPrefix(program, "/") {
			if matches, _ := filepath.Glob(program); len(matches) > 0 {
				return matches[0]
			}
		}
		msg := fmt.Sprintf("%s is not installed (apt-get install %s; scripts/deps.sh installs the test tools)", program, pkg)
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// display is an X server (Xvfb) for the test.
type display struct {
	name string // ":N"
	env  []string
}

func startXvfb(t testing.TB) *display {
	t.Helper()
	needProgram(t, "Xvfb", "xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	log := &syncBuffer{}
	// -displayfd: Xvfb picks a free display and writes its number to fd 3.
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "800x480x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = log, log
	proc := startProcess(t, cmd)
	w.Close()
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if n == "" {
			t.Fatalf("Xvfb gave no display number:\n%s", log)
		}
		return &display{name: ":" + n, env: []string{"DISPLAY=:" + n}}
	case <-proc.done:
		t.Fatalf("Xvfb exited (%v):\n%s", proc.err, log)
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not start within 20s:\n%s", log)
	}
	return nil
}

// run runs a program on the display and fails the test unless it succeeds.
func (d *display) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	r := runIn(t, append([]string{"PATH=" + os.Getenv("PATH")}, d.env...), "", "", name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: %s", name, strings.Join(args, " "), r)
	}
	return r.stdout
}

// screenshot saves the whole screen to path (ImageMagick's import) and returns it.
func (d *display) screenshot(t testing.TB, path string) image.Image {
	t.Helper()
	d.run(t, "import", "-window", "root", "png:"+path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	return img
}

// find returns the centre of the pixels within r whose colour is near c.
func find(img image.Image, r image.Rectangle, c color.NRGBA) (image.Point, bool) {
	var sum image.Point
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr>>8, c.R) && near(pg>>8, c.G) && near(pb>>8, c.B) {
				sum = sum.Add(image.Pt(x, y))
				n++
			}
		}
	}
	if n < 4 {
		return image.Point{}, false
	}
	return sum.Div(n), true
}

func near(v uint32, want uint8) bool {
	d := int(v) - int(want)
	return d > -16 && d < 16
}

// changed counts the pixels within r that differ between a and b.
func changed(a, b image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				n++
			}
		}
	}
	return n
}

// panelConfig is an Xfce panel across the top of the screen: the applications menu, room,
// and the status tray (which hosts StatusNotifierItems and is their watcher).
const panelConfig = `<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="length" type="uint" value="100"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="size" type="uint" value="30"/>
      <property name="plugin-ids" type="array">
        <value type="int" value="1"/>
        <value type="int" value="2"/>
        <value type="int" value="3"/>
      </property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="applicationsmenu"/>
    <property name="plugin-2" type="string" value="separator">
      <property name="expand" type="bool" value="true"/>
      <property name="style" type="uint" value="0"/>
    </property>
    <property name="plugin-3" type="string" value="systray">
      <property name="square-icons" type="bool" value="true"/>
    </property>
  </property>
</channel>
`

// startPanel runs xfce4-panel (with xfconfd, where it keeps its settings) on d and the bus
// at busAddr.
func startPanel(t testing.TB, d *display, busAddr string) {
	t.Helper()
	needTools(t, "xfce4-panel")
	xfconfd := needProgram(t, "/usr/lib/*/xfce4/xfconf/xfconfd", "xfconf")
	dir := shortTempDir(t)
	channel := filepath.Join(dir, "cfg", "xfce4", "xfconf", "xfce-perchannel-xml")
	if err := os.MkdirAll(channel, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(channel, "xfce4-panel.xml"), []byte(panelConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"home", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := append([]string{
		"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "NO_AT_BRIDGE=1",
		"DBUS_SESSION_BUS_ADDRESS=" + busAddr,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "cfg"),
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
	}, d.env...)
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("xfconfd and xfce4-panel:\n%s", log)
		}
	})
	conf := exec.Command(xfconfd)
	conf.Env, conf.Stdout, conf.Stderr = env, log, log
	startProcess(t, conf)
	waitFor(t, "xfconfd on the bus", func() bool {
		return runIn(t, env, dir, "", "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.GetNameOwner", "string:org.xfce.Xfconf").code == 0
	})
	panel := exec.Command("xfce4-panel")
	panel.Env, panel.Stdout, panel.Stderr = env, log, log
	startProcess(t, panel)
	// The tray registers with the panel's StatusNotifierWatcher once, at start: wait until
	// the panel offers it, as a desktop session would have before autostart runs the tray.
	waitFor(t, "the panel's StatusNotifierWatcher on the bus", func() bool {
		return runIn(t, env, dir, "", "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.GetNameOwner", "string:org.kde.StatusNotifierWatcher").code == 0
	})
}

// loginDevice logs profile name in as a user would with `authagent login`, approving the
// code at the IdP.
func loginDevice(t testing.TB, e *env, provider *idp.IdP, name string) {
	t.Helper()
	cmd := exec.Command(authagentBin, "login", name, "--no-browser")
	cmd.Env, cmd.Dir = e.environ(), e.dir
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	proc := startProcess(t, cmd)
	api := &ipc.Client{Socket: e.sock()}
	var code string
	waitFor(t, "the login of "+name, func() bool {
		p, err := api.Profile(context.Background(), name)
		if err == nil && p.Login != nil {
			code = p.Login.UserCode
		}
		return code != ""
	})
	if err := provider.Approve(code); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.done:
		if proc.err != nil {
			t.Fatalf("authagent login %s: %v\n%s", name, proc.err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("authagent login %s did not end within 30s:\n%s", name, out)
	}
}

// artifactsDir is where tests leave files for people to look at: $AUTHAGENT_ARTIFACTS,
// else tests/artifacts.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AUTHAGENT_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// loginDot is the colour of the status dot on the icon for "a login is needed"
// (assets/gen_icons.go).
var loginDot = color.NRGBA{0xd9, 0x8a, 0x00, 0xff}

// The tray in a real panel (Xfce's, under Xvfb), its menu opened with the mouse and a
// profile's submenu with the keyboard, as a user would: the screenshots are saved for a
// person to look at (tray-panel.png, tray-menu.png).
func TestTrayScreenshot(t *testing.T) {
	t.Parallel()
	needTools(t, "xdotool", "dbus-send")
	needProgram(t, "import", "imagemagick")
	busAddr := startBus(t)
	d := startXvfb(t)
	startPanel(t, d, busAddr)

	// Four profiles in three states: two valid with their time left, one API key, and one
	// that needs a login, which the icon shows.
	provider := idp.Start(t, idp.Options{AccessTokenLifetime: time.Hour})
	e := newEnv(t, nil)
	if err := os.MkdirAll(filepath.Dir(e.configPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.configPath(), []byte("secret_store = \"memory\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startAgent(t, e)
	for _, name := range []string{"work", "staging"} {
		runOK(t, e, "", "add", name, "--provider", "devicecode", "--issuer", provider.Issuer(),
			"--client-id", provider.ClientID(), "--host", name+".example.com")
	}
	loginDevice(t, e, provider, "work")
	runOK(t, e, "", "add", "ci", "--provider", "externaljwt", "--host", "ci.example.com")
	runOK(t, e, "opaque-ci-token", "set-token", "ci", "--expires-at", time.Now().Add(41*time.Minute+30*time.Second).UTC().Format(time.RFC3339))
	addAPIKey(t, e, "hub", "hub-secret", "--key-id", "a1b2c3", "--header", "X-API-Key={secret}", "--host", "api.hub.example")

	tp := startTray(t, e, busAddr, d.env, "--panel", "light")
	art := artifactsDir(t)
	panelShot := filepath.Join(art, "tray-panel.png")
	panelStrip := image.Rect(0, 0, 800, 30)

	// The icon shows in the panel once the panel has found the item and drawn it.
	var icon image.Point
	var before image.Image
	deadline := time.Now().Add(30 * time.Second)
	for {
		before = d.screenshot(t, panelShot)
		var ok bool
		if icon, ok = find(before, panelStrip, loginDot); ok {
			break
		}
		if tp.proc.exited() {
			t.Fatalf("authagent tray exited: %v", tp.proc.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tray icon with a login-needed dot in the panel within 30s; see %s", panelShot)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A click opens the menu below the panel.
	d.run(t, "xdotool", "mousemove", "--sync", fmt.Sprint(icon.X), fmt.Sprint(icon.Y), "click", "1")
	below := image.Rect(0, 32, 800, 480)
	menuShot := filepath.Join(art, "tray-menu.png")
	waitFor(t, "the menu to open", func() bool {
		return changed(before, d.screenshot(t, menuShot), below) > 5000
	})
	opened := d.screenshot(t, menuShot)

	// The keyboard walks to the third profile (ci, hub, staging, work) and opens its
	// submenu: Log in, Log out, what went wrong, where its token goes.
	time.Sleep(300 * time.Millisecond)
	d.run(t, "xdotool", "key", "--delay", "150", "Down", "Down", "Down", "Right")
	waitFor(t, "the submenu to open", func() bool {
		return changed(opened, d.screenshot(t, menuShot), below) > 5000
	})
	time.Sleep(500 * time.Millisecond) // let it finish drawing
	d.screenshot(t, menuShot)
	t.Logf("screenshots: %s and %s", panelShot, menuShot)
}
