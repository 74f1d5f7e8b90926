package generators

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

// writeMQTTList writes what one encoding of the whole list writes, for the
// shapes entities take: nested maps and lists, empty values, strings that
// need quoting, and multi-line strings with blank lines (block scalars,
// whose lines carry the list's indentation).
func TestWriteMQTTListAsWholeEncoding(t *testing.T) {
	for name, items := range map[string][]map[string]any{
		"none": nil,
		"one":  {{"sensor": map[string]any{"name": "Temp", "unique_id": "t1", "state_topic": "home/t/state"}}},
		"shapes": {
			{"sensor": map[string]any{"name": "a: b", "value_template": "{{ value_json.t }}", "expire_after": 300, "force_update": true}},
			{"switch": map[string]any{"availability": []any{map[string]any{"topic": "x/a"}, map[string]any{"topic": "x/b"}}, "empty": map[string]any{}, "none": []any{}}},
			{"light": map[string]any{"schema": "template", "command_on_template": "{%- if brightness -%}\non,{{ brightness }}\n\n{%- else -%}\non\n{%- endif -%}\n", "device": map[string]any{"identifiers": []any{"d1"}, "name": "Lamp #1"}}},
			{"binary_sensor": map[string]any{"name": "'quoted'", "payload_on": "ON", "payload_off": "", "tail": "trailing spaces  ", "lead": " leading"}},
		},
	} {
		var want bytes.Buffer
		enc := yaml.NewEncoder(&want)
		enc.SetIndent(2)
		if err := enc.Encode(map[string]any{"mqtt": items}); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		writeMQTTList(&got, items)
		if got.String() != want.String() {
			t.Errorf("%s: got\n%s\nwant\n%s", name, got.String(), want.String())
		}
	}
}
