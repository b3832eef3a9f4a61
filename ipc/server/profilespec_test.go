package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authagent/authagent/ipc"
)

// TestProfileSpecKeys: the body a client builds with ipc.ProfileSpec (package ipc knows
// nothing of the agent's config type) has exactly the keys PUT /v1/profiles/{name} takes,
// and every value of a full spec reaches the agent's config as the client sent it.
func TestProfileSpecKeys(t *testing.T) {
	client, agentSide := bodyKeys(reflect.TypeFor[ipc.ProfileSpec]()), bodyKeys(reflect.TypeFor[profileSpec]())
	if diff := cmp.Diff(agentSide, client); diff != "" {
		t.Fatalf("keys of ipc.ProfileSpec (+) against the agent's (-):\n%s", diff)
	}

	secret := "s3"
	spec := ipc.ProfileSpec{Secret: &secret}
	fill(t, reflect.ValueOf(&spec.ProfileConfig).Elem())
	sent, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "/v1/profiles/x", bytes.NewReader(sent))
	var got profileSpec
	if e := decodeBody(req, &got); e != nil {
		t.Fatalf("the agent refuses a full ipc.ProfileSpec: %v\n%s", e, sent)
	}
	back, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var want, have map[string]any
	json.Unmarshal(sent, &want)
	json.Unmarshal(back, &have)
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("what the agent read (+) against what the client sent (-):\n%s", diff)
	}
}

// fill sets every field of the struct v to a value that is not zero.
func fill(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[ipc.Duration]():
			f.Set(reflect.ValueOf(ipc.Duration(90 * time.Second)))
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name + "-v")
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{"a", "b"}))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Int:
			f.Set(reflect.ValueOf([]int{8000, 18000}))
		case f.Kind() == reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"K": "v"}))
		default:
			t.Fatalf("fill: field %s of kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
}
