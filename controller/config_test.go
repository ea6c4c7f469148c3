package controller

import (
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

func TestNewManagerValidatesItsConfig(t *testing.T) {
	rc := &rest.Config{Host: "http://127.0.0.1:1"}
	tests := []struct {
		name    string
		cfg     ManagerConfig
		wantErr bool
	}{
		{"defaults are enough", ManagerConfig{RESTConfig: rc}, false},
		{"no REST config", ManagerConfig{}, true},
		{"negative grace period", ManagerConfig{RESTConfig: rc, NodeMonitorGracePeriod: -time.Second}, true},
		{"node CIDR mask wider than the cluster CIDR", ManagerConfig{RESTConfig: rc, NodeCIDRMaskSize: 8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewManager(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewManager: err %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
