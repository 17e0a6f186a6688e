// Command micro-registry-panicky panics when asked to register a service named
// "panic", so tests can see a crash reach the host log.
package main

import (
	"context"
	"time"

	"github.com/microhost/micro/sdk/plugin"
	"github.com/microhost/micro/sdk/registry"
)

type panicky struct{ *registry.Memory }

func (p panicky) Register(ctx context.Context, s *registry.Service, ttl time.Duration) error {
	if s.Name == "panic" {
		go func() { panic("registry-panicky was asked to panic") }()
		select {}
	}
	return p.Memory.Register(ctx, s, ttl)
}

func main() {
	plugin.Serve(plugin.Info{Name: "panicky", Kind: plugin.KindRegistry, Version: "0.0.1"}, panicky{registry.NewMemory()})
}
