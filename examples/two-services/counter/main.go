// Command counter is a service that counts greetings: each Greet call asks the
// helloworld service for a greeting and adds how many it has given. `micro run`
// starts it as a child process from examples/two-services/micro.hcl.
package main

import (
	"context"
	"log"
	"sync/atomic"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/host"
	"github.com/microhost/micro/sdk/client"
)

// GreetRequest names who to greet.
type GreetRequest struct {
	Name string `json:"name"`
}

// GreetResponse is helloworld's greeting and the running count.
type GreetResponse struct {
	Message string `json:"message"`
	Count   int64  `json:"count"`
}

// Counter greets through helloworld and counts.
type Counter struct {
	client *client.Client
	n      atomic.Int64
}

// Greet asks helloworld for a greeting.
func (c *Counter) Greet(ctx context.Context, req *GreetRequest) (*GreetResponse, error) {
	var hello greeter.HelloResponse
	if err := c.client.Call(ctx, "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: req.Name}, &hello); err != nil {
		return nil, err
	}
	return &GreetResponse{Message: hello.Message, Count: c.n.Add(1)}, nil
}

func main() {
	ctx := context.Background()
	c := &Counter{}
	h, err := host.New(ctx, host.WithHandler(c))
	if err != nil {
		log.Fatal(err)
	}
	c.client = h.Client()
	if err := h.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
