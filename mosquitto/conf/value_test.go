package conf

import (
	"strings"
	"testing"
)

// TestCheckValue: what CheckValue accepts, Parse reads back as that value;
// what it refuses is the injection of issue 11 and its relatives.
func TestCheckValue(t *testing.T) {
	for _, v := range []string{"house", "s3cret pass", "a#b", "#x", "ünï"} {
		if err := CheckValue("remote_password", v); err != nil {
			t.Errorf("remote_password %q refused: %v", v, err)
			continue
		}
		c, err := Parse("t", strings.NewReader("listener 1883\nconnection b\naddress h:1\ntopic a out 0\nremote_password "+v+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Bridges[0].RemotePassword; got != v {
			t.Errorf("remote_password %q read back as %q", v, got)
		}
	}
	for _, tc := range []struct{ key, value string }{
		{"remote_username", "house\ncleansession false\ntopic x/# out 0\nconnection evil"},
		{"remote_password", "pw "},
		{"remote_password", " pw"},
		{"remote_password", "pw\r"},
		{"remote_password", "p\tw"},
		{"remote_password", "p\x00w"},
		{"remote_password", "p\x85w"},
		{"remote_clientid", "a b"},
		{"remote_username", ""},
		{"topic", "a/# both 0 cloud/\ntopic # both 0"},
		{"bad key", "x"},
		{"x\nlistener", "1"},
	} {
		if err := CheckValue(tc.key, tc.value); err == nil {
			t.Errorf("CheckValue(%q, %q) accepted", tc.key, tc.value)
		}
	}
	if err := CheckComment("Generated for eclipse-mosquitto:2.0\nlistener 40102"); err == nil {
		t.Error("a comment with a newline accepted")
	}
	if err := CheckComment("Bridge cloud"); err != nil {
		t.Error(err)
	}
}
