package service

import (
	"net"
	"testing"
)

func TestAdvertiseAddr(t *testing.T) {
	cases := []struct {
		explicit, bound string
		wantHost        string // "" means any real, specified host
		wantPort        string
		wantErr         bool
	}{
		{"", "127.0.0.1:4000", "127.0.0.1", "4000", false},
		{"", "0.0.0.0:4000", "", "4000", false},
		{"", "[::]:4000", "", "4000", false},
		{"", ":4000", "", "4000", false},
		{"svc.example:80", "0.0.0.0:4000", "svc.example", "80", false},
		{"", "127.0.0.1:0", "", "", true},
		{"", "nonsense", "", "", true},
	}
	for _, tc := range cases {
		got, err := advertiseAddr(tc.explicit, tc.bound)
		if tc.wantErr {
			if err == nil {
				t.Errorf("advertiseAddr(%q, %q) = %q, want an error", tc.explicit, tc.bound, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("advertiseAddr(%q, %q): %v", tc.explicit, tc.bound, err)
			continue
		}
		host, port, _ := net.SplitHostPort(got)
		if port != tc.wantPort {
			t.Errorf("advertiseAddr(%q, %q) = %q, want port %s", tc.explicit, tc.bound, got, tc.wantPort)
		}
		if tc.wantHost != "" && host != tc.wantHost {
			t.Errorf("advertiseAddr(%q, %q) = %q, want host %s", tc.explicit, tc.bound, got, tc.wantHost)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
			t.Errorf("advertiseAddr(%q, %q) = %q: an unspecified host is never advertised", tc.explicit, tc.bound, got)
		}
	}
}
