package acl

import (
	"strings"
	"testing"
)

// TestDecide: the deciding rule and its reason, for each way Check
// decides; Line finds each rule in Format's output.
func TestDecide(t *testing.T) {
	f := &File{
		Anonymous: []Rule{{Read, "public/#"}, {Deny, "public/secret"}},
		Patterns:  []Rule{{ReadWrite, "users/%u/#"}, {Deny, "users/%u/locked"}, {Write, "clients/%c/out"}},
		Users: []Section{
			{User: "admin", Rules: []Rule{{ReadWrite, "#"}, {Read, "$SYS/#"}}},
			{User: "viewer", Rules: []Rule{{Read, "home/+/state"}, {Deny, "home/lamp/state"}}},
		},
	}
	viewer := Client{Username: "viewer", ClientID: "v"}
	tests := []struct {
		c      Client
		topic  string
		access Access
		want   Decision
	}{
		{Client{}, "public/news", Read, Decision{true, OwnRule, Rule{Read, "public/#"}, Ref{false, -1, 0}}},
		{Client{}, "public/secret", Read, Decision{false, OwnRule, Rule{Deny, "public/secret"}, Ref{false, -1, 1}}},
		{Client{Username: "admin"}, "a/b", Write, Decision{true, OwnRule, Rule{ReadWrite, "#"}, Ref{false, 0, 0}}},
		{Client{Username: "admin"}, "$SYS/x", Read, Decision{true, OwnRule, Rule{Read, "$SYS/#"}, Ref{false, 0, 1}}},
		{Client{Username: "admin"}, "$SYS/x", Write, Decision{Reason: SysWrite}},
		{Client{Username: "admin"}, "$share/g/a", Read, Decision{Reason: Shared}},
		{viewer, "home/lamp/state", Read, Decision{false, OwnRule, Rule{Deny, "home/lamp/state"}, Ref{false, 1, 1}}},
		{viewer, "users/viewer/x", Write, Decision{true, PatternRule, Rule{ReadWrite, "users/%u/#"}, Ref{true, -1, 0}}},
		{viewer, "users/viewer/locked", Write, Decision{false, PatternRule, Rule{Deny, "users/%u/locked"}, Ref{true, -1, 1}}},
		{viewer, "clients/v/out", Write, Decision{true, PatternRule, Rule{Write, "clients/%c/out"}, Ref{true, -1, 2}}},
		{viewer, "clients/x/out", Write, Decision{}},
		{Client{Username: "a+b"}, "users/a+b/x", Read, Decision{Reason: Invalid}},
		{Client{Username: "ab", ClientID: "c#"}, "users/ab/x", Read, Decision{Reason: WildcardName}},
		{viewer, "home/+/state", Read, Decision{Reason: Invalid}},
	}
	for _, tt := range tests {
		got := f.Decide(tt.c, tt.topic, tt.access)
		if got != tt.want {
			t.Errorf("Decide(%+v, %q, %v) = %+v, want %+v", tt.c, tt.topic, tt.access, got, tt.want)
		}
		if got.Allowed != f.Check(tt.c, tt.topic, tt.access) || got.Allowed != refCheck(f, tt.c, tt.topic, tt.access) {
			t.Errorf("Decide and Check or refCheck disagree on %+v %q %v", tt.c, tt.topic, tt.access)
		}
		if got.Reason == OwnRule || got.Reason == PatternRule {
			if f.At(got.At) != got.Rule {
				t.Errorf("At(%+v) = %v, want %v", got.At, f.At(got.At), got.Rule)
			}
		}
	}

	lines := strings.Split(string(f.Format()), "\n")
	var refs []Ref
	for i := range f.Anonymous {
		refs = append(refs, Ref{false, -1, i})
	}
	for i := range f.Patterns {
		refs = append(refs, Ref{true, -1, i})
	}
	for s, sec := range f.Users {
		for i := range sec.Rules {
			refs = append(refs, Ref{false, s, i})
		}
	}
	for _, r := range refs {
		kw := "topic "
		if r.Pattern {
			kw = "pattern "
		}
		n := f.Line(r)
		if n < 1 || n > len(lines) || lines[n-1] != kw+f.At(r).String() {
			t.Errorf("Line(%+v) = %d, want the line of %q in\n%s", r, n, kw+f.At(r).String(), f.Format())
		}
	}

	// Rules: the viewer's own rules, deny first, then the patterns, deny first.
	var got []string
	for _, r := range f.Rules(viewer) {
		got = append(got, f.At(r).String())
	}
	want := "deny home/lamp/state, read home/+/state, deny users/%u/locked, readwrite users/%u/#, write clients/%c/out"
	if strings.Join(got, ", ") != want {
		t.Errorf("Rules(viewer) = %s, want %s", strings.Join(got, ", "), want)
	}
	if got := Expand("users/%u/%c/#", viewer); got != "users/viewer/v/#" {
		t.Errorf("Expand = %q", got)
	}
}
