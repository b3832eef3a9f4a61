package providers

import (
	"errors"
	"testing"
)

func TestCheckSendable(t *testing.T) {
	tests := []struct {
		value   string
		wantMsg string // "" when the value is fine
	}{
		{"Bearer {secret}", ""},
		{"a\tb", ""},
		{"naïve", ""},
		{"a\r\nX-Evil: 1", "contains a line break, which can never be sent; remove it"},
		{"a\n", "contains a line break, which can never be sent; remove it"},
		{"a\x00b", "contains a NUL byte, which can never be sent; remove it"},
		{"\x1b[31m", "contains the control character U+001B, which can never be sent; remove it"},
		{"a\x7f", "contains the control character U+007F, which can never be sent; remove it"},
	}
	for _, tt := range tests {
		err := CheckSendable(`headers.X-K`, tt.value)
		if tt.wantMsg == "" {
			if err != nil {
				t.Errorf("CheckSendable(%q) = %v, want nil", tt.value, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != "headers.X-K" || ce.Message != tt.wantMsg {
			t.Errorf("CheckSendable(%q) = %v, want a ConfigError for headers.X-K: %s", tt.value, err, tt.wantMsg)
		}
	}
}

func TestSubKey(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"X-Api-Key", "headers.X-Api-Key"},
		{"x_y", "headers.x_y"},
		{"X.Y", `headers."X.Y"`},
		{"X K\r\n", `headers."X K\r\n"`},
		{"", `headers.""`},
	} {
		if got := SubKey("headers", tt.name); got != tt.want {
			t.Errorf("SubKey(headers, %q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheckKeysRefusesUnsendableUsername(t *testing.T) {
	err := CheckKeys(&ProfileConfig{Provider: "x", Username: "git\r\npassword=x"}, "x")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "username" {
		t.Errorf("CheckKeys: got %v, want a ConfigError for username", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true, "[::1]": true,
		"localhost.example.com": false, "10.0.0.1": false, "api.example.com": false, "": false, "::": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
	for raw, ok := range map[string]bool{
		"https://idp.example.com/token": true, "http://127.0.0.1:8080/token": true, "http://LOCALHOST/token": true,
		"http://[::1]:9000/token": true, "http://idp.example.com/token": false,
	} {
		if err := CheckEndpoint(raw); (err == nil) != ok {
			t.Errorf("CheckEndpoint(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}
