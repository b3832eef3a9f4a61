package tray

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/authagent/authagent/assets"
	"github.com/authagent/authagent/confirm/notifytest"
)

// privateBus starts a dbus-daemon of the test's own (notifytest.Bus) and returns two
// connections to it: one to serve from, one to call from.
func privateBus(t *testing.T) (server, client *dbus.Conn) {
	t.Helper()
	addr := notifytest.Bus(t)
	connect := func() *dbus.Conn {
		c, err := dbus.Connect(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return connect(), connect()
}

type portal struct {
	readOne bool // a version 2 portal; else only Read
	scheme  uint32
}

func (p portal) ReadOne(namespace, key string) (dbus.Variant, *dbus.Error) {
	if !p.readOne {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownMethod", []any{"no ReadOne"})
	}
	return dbus.MakeVariant(p.scheme), nil
}

func (p portal) Read(namespace, key string) (dbus.Variant, *dbus.Error) {
	return dbus.MakeVariant(dbus.MakeVariant(p.scheme)), nil
}

func TestDetectPanel(t *testing.T) {
	tests := []struct {
		name   string
		portal *portal
		want   assets.Panel
	}{
		{"no portal", nil, assets.DarkPanel},
		{"prefers light", &portal{readOne: true, scheme: 2}, assets.LightPanel},
		{"prefers dark", &portal{readOne: true, scheme: 1}, assets.DarkPanel},
		{"no preference", &portal{readOne: true, scheme: 0}, assets.DarkPanel},
		{"old portal, light", &portal{scheme: 2}, assets.LightPanel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, client := privateBus(t)
			if tc.portal != nil {
				if err := server.Export(*tc.portal, "/org/freedesktop/portal/desktop", "org.freedesktop.portal.Settings"); err != nil {
					t.Fatal(err)
				}
				if _, err := server.RequestName("org.freedesktop.portal.Desktop", dbus.NameFlagDoNotQueue); err != nil {
					t.Fatal(err)
				}
			}
			if got := DetectPanel(t.Context(), client); got != tc.want {
				t.Errorf("DetectPanel = %s, want %s", got, tc.want)
			}
		})
	}
}

type notifyCall struct {
	replaces      uint32
	summary, body string
	timeout       int32
	hints         map[string]dbus.Variant
}

type notificationServer struct {
	caps   []string
	mu     sync.Mutex
	calls  []notifyCall
	closed []uint32
}

func (n *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string,
	hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, notifyCall{replaces, summary, body, timeout, hints})
	return uint32(len(n.calls)), nil
}

func (n *notificationServer) CloseNotification(id uint32) *dbus.Error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = append(n.closed, id)
	return nil
}

func (n *notificationServer) GetCapabilities() ([]string, *dbus.Error) { return n.caps, nil }

func TestDBusNotifier(t *testing.T) {
	for _, markup := range []bool{false, true} {
		t.Run(fmt.Sprintf("markup=%v", markup), func(t *testing.T) {
			server, client := privateBus(t)
			srv := &notificationServer{caps: []string{"body"}}
			if markup {
				srv.caps = append(srv.caps, "body-markup")
			}
			if err := server.Export(srv, notificationsPath, notificationsIface); err != nil {
				t.Fatal(err)
			}
			if _, err := server.RequestName(notificationsName, dbus.NameFlagDoNotQueue); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // catches a hang only
			defer cancel()
			n := NewDBusNotifier(client)
			id, err := n.Notify(ctx, Notification{Summary: "Log in to work: WDJB-MJHT", Body: "Enter the code at https://idp.example/device?a=1&b=<2>", Sticky: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Notify(ctx, Notification{Summary: "again", Replaces: id}); err != nil {
				t.Fatal(err)
			}
			if err := n.CloseNotification(ctx, id); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			first := srv.calls[0]
			wantBody := "Enter the code at https://idp.example/device?a=1&b=<2>"
			if markup {
				wantBody = "Enter the code at https://idp.example/device?a=1&amp;b=&lt;2&gt;"
			}
			if first.summary != "Log in to work: WDJB-MJHT" || first.body != wantBody || first.timeout != 0 || first.replaces != 0 {
				t.Errorf("first Notify: %+v; want body %q, no timeout", first, wantBody)
			}
			if srv.calls[1].replaces != id || srv.calls[1].timeout != -1 {
				t.Errorf("second Notify: %+v; want it to replace %d with the default timeout", srv.calls[1], id)
			}
			if len(srv.closed) != 1 || srv.closed[0] != id {
				t.Errorf("closed %v, want [%d]", srv.closed, id)
			}
		})
	}
}

func TestDBusNotifierWithoutServer(t *testing.T) {
	_, client := privateBus(t)
	if _, err := NewDBusNotifier(client).Notify(t.Context(), Notification{Summary: "x"}); err == nil {
		t.Error("Notify without a notification server succeeded")
	}
}
