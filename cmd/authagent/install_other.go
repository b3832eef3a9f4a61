//go:build !darwin && !windows

package main

// installOS reports that this OS takes the systemd units and the XDG autostart entry.
func installOS(string, bool, bool) (bool, error) { return false, nil }
