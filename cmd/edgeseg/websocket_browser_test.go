package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/websocket"
)

// TestRealBrowserWebSocket has Chromium open a WebSocket through edgeseg,
// as a site's chat or live updates do: the origin's 101, which edgeseg now
// reads and gives the request id, is one the browser takes, the messages
// go both ways, and the access line says 101 with the id, not the 200 of a
// page.
func TestRealBrowserWebSocket(t *testing.T) {
	exe := findChromium(t)
	echo := websocket.Handler(func(c *websocket.Conn) {
		for {
			var msg string
			if err := websocket.Message.Receive(c, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(c, strings.ToUpper(msg)); err != nil {
				return
			}
		}
	})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/live" {
			// x/net/websocket checks Origin against the request's Host; edgeseg
			// keeps the visitor's Host, so they agree.
			echo.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><head><title>live</title></head><body><p id="got"></p><script>
const ws = new WebSocket("ws://" + location.host + "/live");
ws.onopen = () => ws.send("hello through edgeseg");
ws.onmessage = e => { const p = document.getElementById("got"); p.textContent = e.data; p.id = "done"; };
ws.onerror = () => { document.getElementById("got").textContent = "error"; };
</script></body></html>`)
	})
	s := startStack(t, origin, nil, "EDGESEG_SERVER_REQUEST_ID_HEADER=X-Request-ID")
	ctx := newBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Emulate(desktop)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/chat"), chromedp.WaitVisible(`#done`)); err != nil {
		t.Fatalf("no message came back over the WebSocket: %v\n%s", err, s.stderr.String())
	}
	got, err := chromedp.Run(ctx, chromedp.Text(`#done`))
	if err != nil {
		t.Fatal(err)
	}
	if got != "HELLO THROUGH EDGESEG" {
		t.Errorf("the page got %q", got)
	}
	var line string
	for deadline := time.Now().Add(3 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		line = regexp.MustCompile(`\{[^\n]*"path":"/live"[^\n]*\}`).FindString(s.stderr.String())
	}
	if !strings.Contains(line, `"status":101`) || !strings.Contains(line, `"cause":"upgrade"`) || !strings.Contains(line, `"request_id":"`) {
		t.Errorf("the WebSocket's access line: %q", line)
	}
}
