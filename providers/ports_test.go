package providers

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// redirect_port takes one port or a list, in the config file and in the socket API's
// profile definitions alike; anything else is refused.
func TestPorts(t *testing.T) {
	for _, tc := range []struct {
		toml, json string
		want       Ports
	}{
		{`redirect_port = 8000`, `{"redirect_port": 8000}`, Ports{8000}},
		{`redirect_port = [8000, 18000]`, `{"redirect_port": [8000, 18000]}`, Ports{8000, 18000}},
		{`redirect_port = "8000"`, `{"redirect_port": "8000"}`, Ports{8000}},
	} {
		var fromTOML, fromJSON ProfileConfig
		if err := toml.Unmarshal([]byte(tc.toml), &fromTOML); err != nil || !slices.Equal(fromTOML.RedirectPort, tc.want) {
			t.Errorf("TOML %s: %v, %v; want %v", tc.toml, fromTOML.RedirectPort, err, tc.want)
		}
		if err := json.Unmarshal([]byte(tc.json), &fromJSON); err != nil || !slices.Equal(fromJSON.RedirectPort, tc.want) {
			t.Errorf("JSON %s: %v, %v; want %v", tc.json, fromJSON.RedirectPort, err, tc.want)
		}
	}
	for _, bad := range []string{`redirect_port = "eight"`, `redirect_port = true`} {
		var c ProfileConfig
		if err := toml.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("TOML %s was taken: %v", bad, c.RedirectPort)
		}
	}
	var c ProfileConfig
	if err := json.Unmarshal([]byte(`{"redirect_port": {"a": 1}}`), &c); err == nil {
		t.Errorf("JSON object taken as ports: %v", c.RedirectPort)
	}
	// What the config editor writes reads back the same.
	out, err := toml.Marshal(ProfileConfig{Provider: "oidc", RedirectPort: Ports{8000, 18000}})
	if err != nil {
		t.Fatal(err)
	}
	var back ProfileConfig
	if err := toml.Unmarshal(out, &back); err != nil || !slices.Equal(back.RedirectPort, Ports{8000, 18000}) {
		t.Errorf("round trip of %s: %v, %v", out, back.RedirectPort, err)
	}
}
