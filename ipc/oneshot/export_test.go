package oneshot

import "github.com/authagent/authagent/ipc/wire"

// SetServerCheck makes c check servers with s: tests play another user without being root.
func SetServerCheck(c *Client, s wire.ServerCheck) { c.check = s }
