// Package opener opens a URL in the user's browser, or a file in its application: the
// desktop's handler (xdg-open, open), with $BROWSER first for web pages, as the CLI and
// the tray both do it. CanOpenBrowser says whether a browser can be shown from here at
// all (not over SSH without a display). Consumers define the interface they need and take
// a fake in tests.
package opener
