// Command helloworld runs the greeter service until SIGINT or SIGTERM.
//
//	go run ./examples/helloworld -addr 127.0.0.1:8080
//	curl -d '{"name":"Alice"}' -H 'Content-Type: application/json' http://127.0.0.1:8080/Greeter.Hello
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/microhost/micro/examples/helloworld/greeter"
	"github.com/microhost/micro/sdk/server"
	"github.com/microhost/micro/sdk/service"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	flag.Parse()

	logger := log.New(os.Stderr, "", log.LstdFlags)
	svc := service.New("helloworld",
		service.Version("1.0.0"),
		service.Address(*addr),
		service.Logger(func(msg string, args ...any) { logger.Println(append([]any{msg}, args...)...) }),
	)
	if err := svc.Handle(new(greeter.Greeter), server.Idempotent("Hello")); err != nil {
		logger.Fatal(err)
	}
	go func() {
		<-svc.Ready()
		fmt.Printf("helloworld listening on %s\n", svc.Addr())
		fmt.Printf("try: curl -d '{\"name\":\"Alice\"}' -H 'Content-Type: application/json' http://%s/Greeter.Hello\n", svc.Addr())
	}()
	if err := svc.Run(context.Background()); err != nil {
		logger.Fatal(err)
	}
}
