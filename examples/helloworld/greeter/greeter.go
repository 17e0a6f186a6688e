// Package greeter is the helloworld service's handler: one unary endpoint and one
// server-streaming endpoint.
package greeter

import (
	"context"
	"fmt"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/server"
)

// HelloRequest names who to greet.
type HelloRequest struct {
	Name string `json:"name"`
}

// HelloResponse carries the greeting.
type HelloResponse struct {
	Message string `json:"message"`
}

// CountRequest asks for the numbers 1..To.
type CountRequest struct {
	To int `json:"to"`
}

// CountResponse is one number of a count.
type CountResponse struct {
	N int `json:"n"`
}

// Greeter greets.
type Greeter struct{}

// Hello answers "Hello <name>".
func (g *Greeter) Hello(ctx context.Context, req *HelloRequest) (*HelloResponse, error) {
	if req.Name == "" {
		return nil, errors.BadRequest("helloworld", "name is required, e.g. {\"name\":\"Alice\"}")
	}
	return &HelloResponse{Message: fmt.Sprintf("Hello %s", req.Name)}, nil
}

// Count streams 1..To, one message each.
func (g *Greeter) Count(ctx context.Context, req *CountRequest, stream server.Stream) error {
	if req.To < 0 || req.To > 10000 {
		return errors.BadRequest("helloworld", "to must be between 0 and 10000, got %d", req.To)
	}
	for i := 1; i <= req.To; i++ {
		if err := stream.Send(&CountResponse{N: i}); err != nil {
			return err
		}
	}
	return nil
}
