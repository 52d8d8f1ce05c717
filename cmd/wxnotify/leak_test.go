package main

import (
	"strings"
	"testing"
)

// The leak check every testEnv runs at the end of its test must itself
// be able to fail.
func TestLeakCheckFindsSecretsAndTheirFirstCharacters(t *testing.T) {
	t.Parallel()
	secrets := []string{secretEnv[:excerptLen], "tok3n-issued-by-the-fake"}
	cases := []struct {
		name   string
		output string
		leaked bool
	}{
		{"whole secret", "account wx1: " + secretEnv + " rejected", true},
		{"yaml excerpt", "cannot unmarshal !!str `" + secretEnv[:excerptLen] + "...` into int", true},
		{"token in a url", "POST /cgi-bin/token?access_token=tok3n-issued-by-the-fake", true},
		{"fingerprint only", `{"token":"sha256:2b965141","message":"access token refreshed"}`, false},
		{"nothing", "", false},
	}
	for _, tc := range cases {
		got := findLeaks(map[string]string{"stderr": tc.output}, secrets)
		if leaked := len(got) > 0; leaked != tc.leaked {
			t.Errorf("%s: leaks %v, want leaked=%v", tc.name, got, tc.leaked)
		}
		for _, report := range got {
			if strings.Contains(report, secretEnv[:excerptLen]) {
				t.Errorf("%s: the report %q repeats the secret", tc.name, report)
			}
		}
	}
}

func TestEveryTestSecretStartsDifferently(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range knownSecrets {
		if len(s) < excerptLen || seen[s[:excerptLen]] {
			t.Errorf("secret starting %q is too short or starts like another", s[:4])
		}
		seen[s[:excerptLen]] = true
	}
}
