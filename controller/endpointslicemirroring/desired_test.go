package endpointslicemirroring

import "testing"

func TestWhichAddressesAreMirrored(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when skipped
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:DB8:0:0::1", "2001:db8::1"},
		{"010.001.002.003", "10.1.2.3"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"239.1.2.3", "239.1.2.3"},
		{"not-an-ip", ""},
		{"", ""},
		{"10.0.0.300", ""},
		{"fe80::1%eth0", ""},
		{"0.0.0.0", ""},
		{"::", ""},
		{"127.0.0.1", ""},
		{"127.9.9.9", ""},
		{"::1", ""},
		{"169.254.169.254", ""},
		{"fe80::1", ""},
		{"224.0.0.251", ""},
		{"ff02::1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, ok := mirrorable(tc.in)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tc.want {
				t.Errorf("mirrorable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
