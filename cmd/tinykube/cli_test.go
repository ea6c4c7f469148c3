package main

import (
	"context"
	"strings"
	"testing"
)

func TestUnknownCommandsAndFlagsFailAsCobraSaysThem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `tinykube: unknown command "bogus" for "tinykube"`},
		{[]string{"check-config"}, `tinykube: unknown command "check-config" for "tinykube"`},
		{[]string{"token", "bogus"}, `tinykube: unknown command "bogus" for "tinykube token"`},
		{[]string{"images", "bogus"}, `tinykube: unknown command "bogus" for "tinykube images"`},
		{[]string{"service", "bogus"}, `tinykube: unknown command "bogus" for "tinykube service"`},
		{[]string{"--bogus"}, `tinykube: unknown flag: --bogus`},
		{[]string{"server", "--bogus"}, `tinykube: unknown flag: --bogus`},
		{[]string{"server", "--log-format", "xml"}, `tinykube: --log-format "xml": must be text or json`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code == 0 {
				t.Fatalf("exit status 0; stdout %q", stdout.String())
			}
			if got := strings.TrimSpace(stderr.String()); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("stderr %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

func TestBareCommandGroupsShowTheirHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"token"}, {"images"}} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Errorf("%q: exit status %d, stderr %q", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Usage:") {
			t.Errorf("%q printed no help: %q", args, stdout.String())
		}
	}
}
