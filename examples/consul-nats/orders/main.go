// Command orders takes orders and announces each one on the broker as an
// "orders.placed" event. `micro run` starts it from examples/consul-nats.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sync/atomic"

	"github.com/microhost/micro/host"
	"github.com/microhost/micro/sdk/broker"
	"github.com/microhost/micro/sdk/errors"
)

// PlaceRequest is an order.
type PlaceRequest struct {
	Email string `json:"email"`
	Item  string `json:"item"`
}

// PlaceResponse is the order's id.
type PlaceResponse struct {
	ID string `json:"id"`
}

// Placed is the event an order publishes.
type Placed struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Item  string `json:"item"`
}

// Orders publishes every order it takes.
type Orders struct {
	broker broker.Broker
	n      atomic.Int64
}

// Place takes an order and returns once the event is stored by the broker.
func (o *Orders) Place(ctx context.Context, req *PlaceRequest) (*PlaceResponse, error) {
	if req.Email == "" || req.Item == "" {
		return nil, errors.BadRequest("orders", "an order needs an email and an item")
	}
	ev := Placed{ID: fmt.Sprintf("order-%d", o.n.Add(1)), Email: req.Email, Item: req.Item}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	msg := &broker.Message{Header: map[string]string{"Content-Type": "application/json"}, Body: body}
	if err := o.broker.Publish(ctx, "orders.placed", msg); err != nil {
		return nil, fmt.Errorf("publish order %s: %w", ev.ID, err)
	}
	return &PlaceResponse{ID: ev.ID}, nil
}

func main() {
	ctx := context.Background()
	o := &Orders{}
	h, err := host.New(ctx, host.WithHandler(o))
	if err != nil {
		log.Fatal(err)
	}
	o.broker = h.Broker()
	if err := h.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
