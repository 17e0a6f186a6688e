package codec_test

import (
	"fmt"

	"github.com/microhost/micro/sdk/codec"
	"github.com/microhost/micro/sdk/errors"
)

// A server picks the codec to read a request with from its Content-Type, and the
// codec to answer with from its Accept header.
func ExampleSet() {
	codecs := codec.DefaultSet()

	req, err := codecs.ForContentType("application/x-msgpack; charset=binary", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := codecs.ForAccept("application/json;q=0.5, application/*", req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Name(), resp.Name(), resp.ContentType())

	_, err = codecs.ForContentType("text/plain", nil)
	fmt.Println(errors.Code(err), err)

	_, err = codecs.ForAccept("text/html", req)
	fmt.Println(errors.Code(err), err)
	// Output:
	// msgpack msgpack application/msgpack
	// 415 415 Unsupported Media Type: Content-Type "text/plain" is not supported; send one of: application/json, application/msgpack, application/x-msgpack
	// 406 406 Not Acceptable: none of the types in Accept "text/html" can be produced; ask for one of: application/json, application/msgpack
}
