// Package tests holds authagent's end-to-end tests: they build the real binary once and
// drive it as a user would, against real peers (a private D-Bus session bus with
// gnome-keyring as the Secret Service, curl, sh). It holds no code of the product.
// Unit tests live next to the code they test.
package tests
