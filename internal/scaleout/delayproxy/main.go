// Command delayproxy forwards TCP connections and delays every byte by a fixed time in
// each direction, like `tc qdisc add ... netem delay` on both ends of a link. The
// scale-out tests use it where the kernel has no netem (CONFIG_NET_SCH_NETEM unset):
// it adds latency without limiting bandwidth, and keeps the order of the bytes.
//
//	delayproxy --listen 10.77.0.10:5433 --to 10.77.0.10:5432 --delay 10ms
//
// A delay of 10 ms each way adds 20 ms to every round trip.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to listen on")
	to := flag.String("to", "", "address to forward to")
	delay := flag.Duration("delay", 0, "delay of each direction")
	flag.Parse()
	if *listen == "" || *to == "" {
		fmt.Fprintln(os.Stderr, "delayproxy: --listen and --to are required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "delayproxy:", err)
			os.Exit(1)
		}
		go serve(c, *to, *delay)
	}
}

func serve(client net.Conn, to string, delay time.Duration) {
	server, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "delayproxy:", err)
		client.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(server, client, delay) }()
	go func() { defer wg.Done(); pipe(client, server, delay) }()
	wg.Wait()
	client.Close()
	server.Close()
}

// chunk is bytes read at one time, due for writing delay later.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk written delay after it was read.
func pipe(dst, src net.Conn, delay time.Duration) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{data: buf[:n], due: time.Now().Add(delay)}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					fmt.Fprintln(os.Stderr, "delayproxy: read:", err)
				}
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Half-close so the other side sees EOF, then drain what is left.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	for range q {
	}
}
