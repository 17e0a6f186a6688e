// Command mailer "sends" a mail for every "orders.placed" event and answers
// which it sent. Its instances share the queue group "mailer", so each order is
// mailed once however many run. `micro run` starts it from examples/consul-nats.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sync"

	"github.com/microhost/micro/host"
	"github.com/microhost/micro/sdk/broker"
)

// Mail is one mail sent.
type Mail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

// SentRequest asks for the mails sent so far.
type SentRequest struct{}

// SentResponse lists them, oldest first.
type SentResponse struct {
	Mails []Mail `json:"mails"`
}

// Mailer records the mails it sent.
type Mailer struct {
	mu    sync.Mutex
	mails []Mail
}

// Sent returns the mails sent so far.
func (m *Mailer) Sent(ctx context.Context, _ *SentRequest) (*SentResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &SentResponse{Mails: append([]Mail{}, m.mails...)}, nil
}

// placed handles one "orders.placed" event; an error nacks it, so the broker
// delivers it again.
func (m *Mailer) placed(ctx context.Context, d broker.Delivery) error {
	var ev struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Item  string `json:"item"`
	}
	if err := json.Unmarshal(d.Message().Body, &ev); err != nil {
		return fmt.Errorf("orders.placed: %w", err)
	}
	m.mu.Lock()
	m.mails = append(m.mails, Mail{To: ev.Email, Subject: fmt.Sprintf("Your %s is on its way (%s)", ev.Item, ev.ID)})
	m.mu.Unlock()
	return nil
}

func main() {
	ctx := context.Background()
	m := &Mailer{}
	h, err := host.New(ctx, host.WithHandler(m))
	if err != nil {
		log.Fatal(err)
	}
	sub, err := h.Broker().Subscribe(ctx, "orders.placed", m.placed, broker.Queue("mailer"), broker.AutoAck(true))
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
