// output.go is the --format (-o) flag of the topic, group and cluster commands: text for
// people (the layouts of Kafka's own tools) or json for scripts, one convention for all.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
)

type outputFormat string

func (f *outputFormat) String() string {
	if *f == "" {
		return "text"
	}
	return string(*f)
}

func (f *outputFormat) Set(s string) error {
	switch s {
	case "text", "json":
		*f = outputFormat(s)
		return nil
	}
	return fmt.Errorf("want text or json, got %q", s)
}

func (f outputFormat) json() bool { return f == "json" }

// writeJSON writes v as one indented JSON document, the whole output of a command.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// jsonConfig is one config entry as the describe commands print it.
type jsonConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"` // null for a sensitive or unset value
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}
