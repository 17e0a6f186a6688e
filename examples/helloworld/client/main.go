// Command client calls a running helloworld service.
//
//	go run ./examples/helloworld/client -addr 127.0.0.1:8080 -name Alice
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/sdk/client"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address of a helloworld instance")
	name := flag.String("name", "World", "who to greet")
	count := flag.Int("count", 3, "also stream a count to this number (0 to skip)")
	flag.Parse()

	c := client.New(client.Timeout(5 * time.Second))
	defer c.Close()
	ctx := context.Background()

	var rsp greeter.HelloResponse
	if err := c.Call(ctx, "helloworld", "Greeter.Hello", &greeter.HelloRequest{Name: *name}, &rsp, client.WithAddress(*addr)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rsp.Message)

	if *count <= 0 {
		return
	}
	stream, err := c.Stream(ctx, "helloworld", "Greeter.Count", client.WithAddress(*addr))
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	if err := stream.Send(&greeter.CountRequest{To: *count}); err != nil {
		log.Fatal(err)
	}
	stream.CloseSend()
	for {
		var n greeter.CountResponse
		err := stream.Recv(&n)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(n.N)
	}
}
