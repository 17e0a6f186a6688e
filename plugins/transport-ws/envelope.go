package main

import (
	"encoding/json"
	"strconv"

	"github.com/microhost/micro/sdk/errors"
	"github.com/microhost/micro/sdk/metadata"
	"github.com/microhost/micro/sdk/transport"
)

// encodeEnvelope renders err as the payload of an error or refused frame.
func encodeEnvelope(err error) []byte {
	b, mErr := json.Marshal(errors.FromError(err))
	if mErr != nil {
		return []byte(`{"code":500,"status":"Internal Server Error","detail":"unencodable error"}`)
	}
	return b
}

// decodeEnvelope reads the payload of an error or refused frame.
func decodeEnvelope(b []byte) *errors.Error {
	var e errors.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Code == 0 {
		return errors.BadGateway("", "transport ws: unreadable error frame %.100q", b)
	}
	return &e
}

// errorMessage is the response carrying err's envelope with its status, as the
// http transport answers transport-level failures.
func errorMessage(err error) *transport.Message {
	e := errors.FromError(err)
	b, _ := json.Marshal(e)
	return &transport.Message{
		Header: map[string]string{
			metadata.Status:      strconv.Itoa(int(e.Code)),
			metadata.Error:       "1",
			metadata.ContentType: "application/json",
		},
		Body: b,
	}
}
