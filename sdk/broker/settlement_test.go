package broker_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/microhost/micro/sdk/broker"
)

func TestSettlement(t *testing.T) {
	var told []bool
	tell := func(ack bool) error { told = append(told, ack); return nil }

	var s broker.Settlement
	if err := s.Settle(true, tell, "ack m"); err != nil {
		t.Fatal(err)
	}
	if err := s.Settle(true, tell, "ack m"); err != nil {
		t.Fatalf("acking twice: %v", err)
	}
	err := s.Settle(false, tell, "nack m")
	if !errors.Is(err, broker.ErrAlreadySettled) || !strings.Contains(err.Error(), "nack m") || !strings.Contains(err.Error(), "it was acked") {
		t.Fatalf("nack after ack = %v", err)
	}
	if !s.Finish(false, nil, tell) || len(told) != 1 || !told[0] {
		t.Fatalf("Finish after an Ack: told %v; want the one ack only", told)
	}

	for _, tc := range []struct {
		name      string
		autoAck   bool
		err       error
		wantAcked bool
		wantTold  bool // the ack value told
		expired   bool
	}{
		{"auto ack, handler ok", true, nil, true, true, false},
		{"auto ack, handler failed", true, errors.New("boom"), false, false, false},
		{"no auto ack, unsettled", false, nil, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s broker.Settlement
			var told []bool
			acked := s.Finish(tc.autoAck, tc.err, func(ack bool) error { told = append(told, ack); return nil })
			if acked != tc.wantAcked || len(told) != 1 || told[0] != tc.wantTold || s.Expired() != tc.expired {
				t.Fatalf("acked %v told %v expired %v", acked, told, s.Expired())
			}
			err := s.Settle(true, nil, "late ack")
			if !tc.wantAcked && !errors.Is(err, broker.ErrAlreadySettled) {
				t.Fatalf("a late Ack = %v, want ErrAlreadySettled", err)
			}
		})
	}
}
