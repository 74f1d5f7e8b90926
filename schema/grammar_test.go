package schema

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestStringFieldsCoverEveryField fills every string of a Config (map keys
// aside, which CUE's #Name and #UserName fix) with a value of its own and
// checks that StringFields names each one with a grammar: a new string field
// cannot reach a rendered file unchecked.
func TestStringFieldsCoverEveryField(t *testing.T) {
	var cfg Config
	n := 0
	var want []string
	var fill func(v reflect.Value, path string)
	fill = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.Type().Elem().Kind() == reflect.Bool {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), path)
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				if !f.IsExported() || jsonName(f) == "" {
					continue // not a field of home.cue (json:"-": set by mqttgen)
				}
				fill(v.Field(i), join(path, jsonName(f)))
			}
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, join(path, "k"))
			m.SetMapIndex(reflect.ValueOf("k"), e)
			v.Set(m)
		case reflect.Slice:
			s := reflect.MakeSlice(v.Type(), 1, 1)
			fill(s.Index(0), path+"[0]")
			v.Set(s)
		case reflect.String:
			n++
			v.SetString(fmt.Sprintf("v%d", n))
			want = append(want, path)
		}
	}
	fill(reflect.ValueOf(&cfg).Elem(), "")
	var got []string
	for _, f := range cfg.StringFields() {
		if f.Grammar.Check == nil {
			t.Errorf("%s: no grammar", f.Path)
		}
		got = append(got, f.Path)
	}
	slices.Sort(want)
	slices.Sort(got)
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("string field %s has no grammar in StringFields", p)
		}
	}
	if len(want) < 50 {
		t.Fatalf("only %d string fields found: the walk is broken", len(want))
	}
}

// TestGrammarsRefuseLineBreaks: no grammar that is not closed accepts a value
// holding a line break or other control character, or (but text) edge spaces.
func TestGrammarsRefuseLineBreaks(t *testing.T) {
	grammars := []Grammar{Text, FilePath, EnvName, Host, IP, HostPort, ImageRef, MQTTWord, Password, TopicRoot, BridgePattern, BridgePrefix, Rule, PatternRule, CronExpr, Project}
	good := map[string]string{
		Text.Name: "Temperature", FilePath.Name: "secrets/pw", EnvName.Name: "PW", Host.Name: "mqtt.home.arpa", IP.Name: "127.0.0.1",
		HostPort.Name: "cloud.example.com:8883", ImageRef.Name: "eclipse-mosquitto:2.0.20", MQTTWord.Name: "house",
		Password.Name: "s3cret pass", TopicRoot.Name: "home/main", BridgePattern.Name: "sensors/#", BridgePrefix.Name: "cloud/",
		Rule.Name: "read home/#", PatternRule.Name: "readwrite users/%u/#", CronExpr.Name: "0 3 * * *", Project.Name: "home",
	}
	for _, g := range grammars {
		ok := good[g.Name]
		if err := g.Check(ok); err != nil {
			t.Errorf("%s refuses %q: %v", g.Name, ok, err)
		}
		bads := []string{ok + "\n", ok + "\nlistener 1", "\n" + ok, ok[:1] + "\r" + ok[1:], ok + "\x00", ok + "\u0085"}
		switch g.Name {
		case Rule.Name, PatternRule.Name, CronExpr.Name:
			// home.cue's own syntax, parsed into words: edge blanks go.
		default:
			bads = append(bads, ok+" ", " "+ok, ok+"\t", ok+"\u2028")
		}
		for _, bad := range bads {
			if err := g.Check(bad); err == nil {
				t.Errorf("%s accepts %q", g.Name, bad)
			}
		}
		if strings.Contains(g.Name, "closed") {
			t.Errorf("%s is closed", g.Name)
		}
	}
}
