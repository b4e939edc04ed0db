package qtx

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// Int64 decodes a proto3 JSON 64-bit integer, which is a string ("123")
// or, from some writers, a number.
type Int64 int64

func (n *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	*n = Int64(v)
	return err
}

// Uint64 is the unsigned Int64.
type Uint64 uint64

func (n *Uint64) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	*n = Uint64(v)
	return err
}

func decodeNumbers(s string) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, newError(KindProtocol, "stats JSON: "+err.Error())
	}
	return m, nil
}

// callInto runs req and decodes the response's field `field` into out.
func (a *Agent) callInto(ctx context.Context, req, field string, out any) error {
	raw, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return newError(KindProtocol, "response JSON: "+err.Error())
	}
	body, ok := m[field]
	if !ok {
		return newError(KindProtocol, "the response has no "+field+": "+raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return newError(KindProtocol, "response JSON: "+err.Error())
	}
	return nil
}

// Ping asks the agent for an answer.
func (a *Agent) Ping(ctx context.Context) error {
	return a.callInto(ctx, `{"ping":{}}`, "ping", nil)
}

// OSInfo is the guest's /etc/os-release.
type OSInfo struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	VersionID  string `json:"version_id"`
	PrettyName string `json:"pretty_name"`
}

// Info is the answer to Info (qtx.agent.v1.InfoResponse); Raw has every
// field.
type Info struct {
	OS            OSInfo `json:"os"`
	KernelRelease string `json:"kernel_release"`
	KernelVersion string `json:"kernel_version"`
	Arch          string `json:"arch"`
	Hostname      string `json:"hostname"`
	Timezone      string `json:"timezone"`
	Agent         struct {
		Version    string `json:"version"`
		InstanceID string `json:"instance_id"`
		BootID     string `json:"boot_id"`
	} `json:"agent"`
	Raw json.RawMessage `json:"-"`
}

// Info describes the guest: OS, kernel, hostname, the agent and its policy.
func (a *Agent) Info(ctx context.Context) (*Info, error) {
	var raw json.RawMessage
	if err := a.callInto(ctx, `{"info":{}}`, "info", &raw); err != nil {
		return nil, err
	}
	info := &Info{Raw: raw}
	if err := json.Unmarshal(raw, info); err != nil {
		return nil, newError(KindProtocol, "info JSON: "+err.Error())
	}
	return info, nil
}

// Hostname is the guest's hostname.
func (a *Agent) Hostname(ctx context.Context) (string, error) {
	var r struct {
		Hostname string `json:"hostname"`
	}
	err := a.callInto(ctx, `{"hostname_get":{}}`, "hostname_get", &r)
	return r.Hostname, err
}

// SetHostname sets the guest's hostname (and /etc/hostname with persist).
func (a *Agent) SetHostname(ctx context.Context, name string, persist bool) error {
	req, _ := json.Marshal(map[string]any{"hostname_set": map[string]any{"hostname": name, "persist": persist}})
	return a.callInto(ctx, string(req), "done", nil)
}

// Time is the guest's wall clock.
func (a *Agent) Time(ctx context.Context) (time.Time, error) {
	var r struct {
		UnixTimeNs Int64 `json:"unix_time_ns"`
	}
	if err := a.callInto(ctx, `{"time_get":{}}`, "time_get", &r); err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(r.UnixTimeNs)), nil
}

// FileStat is a guest file's metadata (qtx.agent.v1.FileStat); Raw has
// every field.
type FileStat struct {
	Size Uint64          `json:"size"`
	Mode uint32          `json:"mode"`
	Raw  json.RawMessage `json:"-"`
}

// Stat describes a guest file.
func (a *Agent) Stat(ctx context.Context, path string) (*FileStat, error) {
	req, _ := json.Marshal(map[string]any{"file_stat": map[string]any{"path": path}})
	var raw json.RawMessage
	if err := a.callInto(ctx, string(req), "file_stat", &raw); err != nil {
		return nil, err
	}
	st := &FileStat{Raw: raw}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, newError(KindProtocol, "file_stat JSON: "+err.Error())
	}
	return st, nil
}

// Remove deletes a guest file (or an empty directory).
func (a *Agent) Remove(ctx context.Context, path string) error {
	req, _ := json.Marshal(map[string]any{"file_remove": map[string]any{"path": path}})
	return a.callInto(ctx, string(req), "done", nil)
}

// SetTelemetryInterval changes how often the agent samples telemetry.
func (a *Agent) SetTelemetryInterval(ctx context.Context, d time.Duration) error {
	req, _ := json.Marshal(map[string]any{"telemetry_config": map[string]any{"interval_ms": d.Milliseconds()}})
	return a.callInto(ctx, string(req), "telemetry_config", nil)
}
