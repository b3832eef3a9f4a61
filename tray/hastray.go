//go:build cgo || !darwin

package tray

// Built says whether this binary has the tray; it lacks it on macOS without cgo.
const Built = true
