package kubetest

import (
	"os"
	"strings"
	"testing"
)

// The Makefile builds the release the tests look for.
func TestVersionMatchesMakefile(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\nKUBE_VERSION := "+Version+"\n") {
		t.Errorf("the Makefile's KUBE_VERSION is not %s", Version)
	}
	if !strings.HasSuffix(BinDir(), "/v"+Version) && os.Getenv("MQTTGEN_KUBE_BIN") == "" {
		t.Errorf("BinDir %s is not the Makefile's", BinDir())
	}
	for _, mod := range []string{"../../tools/kube/apiserver/go.mod"} {
		b, err := os.ReadFile(mod)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "k8s.io/kubernetes v"+Version) {
			t.Errorf("%s does not pin k8s.io/kubernetes v%s", mod, Version)
		}
	}
}
