package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// holdIdle opens n keep-alive connections to addr, fetches path once on
// each (reading the whole response, as a browser would) and leaves them
// open and idle. It prints the targets' RSS before and with them open, and
// how many were refused (503), then closes them.
func holdIdle(addr, path string, n int, pids []int, hold time.Duration) error {
	before := rssMB(pids)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	refused, failed := 0, 0
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/html\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36\r\n\r\n"
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := func() (*http.Response, error) {
			if _, err := io.WriteString(c, req); err != nil {
				return nil, err
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return resp, err
		}()
		switch {
		case err != nil:
			failed++
			c.Close()
			continue
		case resp.StatusCode == http.StatusServiceUnavailable:
			refused++
			c.Close()
			continue
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	time.Sleep(hold) // let the targets settle with the connections idle
	fmt.Printf("idle connections: %d open, %d refused, %d failed; RSS %.1f MiB before, %.1f MiB with them open (%.1f KiB each)\n",
		len(conns), refused, failed, before, rssMB(pids), (rssMB(pids)-before)*1024/float64(max(len(conns), 1)))
	return nil
}
