package qtx

import (
	"encoding/json"
	"strings"
)

// Event is one event the agent pushed (qtx.agent.v1.Event). Kind is the
// name of the event's field: "telemetry", "freeze_state",
// "telemetry_dropped", "agent_started"; JSON is the whole event.
type Event struct {
	Kind string
	JSON json.RawMessage
}

// Telemetry decodes a "telemetry" event's sample.
func (e Event) Telemetry() (*Telemetry, bool) {
	if e.Kind != "telemetry" {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(e.JSON, &m) != nil {
		return nil, false
	}
	t, err := parseTelemetry(m["telemetry"])
	return t, err == nil
}

// parseEvent runs on the I/O thread: it reads only the first key (the
// oneof's field), not the whole sample.
func parseEvent(s string) Event {
	ev := Event{JSON: json.RawMessage(s)}
	d := json.NewDecoder(strings.NewReader(s))
	if tok, err := d.Token(); err == nil && tok == json.Delim('{') {
		if key, err := d.Token(); err == nil {
			ev.Kind, _ = key.(string)
		}
	}
	return ev
}

// Telemetry is a sample's main figures (qtx.agent.v1.TelemetrySample);
// Raw has every field.
type Telemetry struct {
	Seq        Uint64 `json:"seq"`
	UnixTimeMs Int64  `json:"unix_time_ms"`
	UptimeMs   Uint64 `json:"uptime_ms"`
	CPU        struct {
		BusyPct float64 `json:"busy_pct"`
	} `json:"cpu"`
	Memory struct {
		TotalBytes     Uint64 `json:"total_bytes"`
		AvailableBytes Uint64 `json:"available_bytes"`
	} `json:"memory"`
	Load struct {
		One float64 `json:"one"`
	} `json:"load"`
	ProcessCount  uint32          `json:"process_count"`
	DroppedBefore Uint64          `json:"dropped_before"` // samples the agent dropped before this one
	Raw           json.RawMessage `json:"-"`
}

func parseTelemetry(raw json.RawMessage) (*Telemetry, error) {
	t := &Telemetry{Raw: raw}
	if err := json.Unmarshal(raw, t); err != nil {
		return nil, newError(KindProtocol, "telemetry JSON: "+err.Error())
	}
	return t, nil
}
