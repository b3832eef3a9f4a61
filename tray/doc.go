// Package tray is authagent's tray icon (`authagent tray`), a pure client of the agent's
// socket (package ipc): it follows the agent's events, shows the worst state over all
// profiles as its icon, lists the profiles with Log in and Log out, starts device logins in
// the agent, opens the browser and raises desktop notifications. It holds no secrets: no
// token passes through it. When no agent answers it says so, offers to start one, and
// reconnects with backoff.
//
// BuildMenu is the whole menu as a pure function of the profile list. Tray keeps that list
// current and runs the menu's actions. systray.go renders menus with fyne.io/systray,
// whose globals stay in that one file; notify.go talks to org.freedesktop.Notifications.
package tray
