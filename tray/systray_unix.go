//go:build (linux || freebsd || openbsd || netbsd) && !android

package tray

import "runtime"

// fyne systray's init locks the main goroutine to the main thread, which the macOS and
// Windows event loops need. Here it only talks D-Bus and needs no thread of its own, while
// the lock costs every command in this binary, the agent most: each time its main
// goroutine wakes, the scheduler hands off to the main thread (twice the context switches
// per connection). Undo it.
func init() { runtime.UnlockOSThread() }
