package main

import (
	"bytes"
	"html"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/chromedp/chromedp"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// legacyPage is a shop page in some encoding other than UTF-8, with the
// hero slot the example templates fill.
type legacyPage struct {
	path, contentType string
	enc               encoding.Encoding // how the origin's bytes are encoded; nil: ASCII/UTF-8
	body              string            // UTF-8 source of the page
	own               string            // text of the origin's that must survive, as read
}

func legacyPages() []legacyPage {
	shell := func(head, own string) string {
		return `<!doctype html><html><head>` + head + `<title>Shop</title></head><body>` +
			`<section id="hero" data-edgeseg-slot="hero"><h1>Welcome</h1><p>default</p></section>` +
			`<p id="own">` + own + `</p></body></html>`
	}
	return []legacyPage{
		{"/latin1", "text/html", charmap.Windows1252, shell(`<meta charset="windows-1252">`, "Café crème"), "Café crème"},
		// Browsers read a page labelled ISO-8859-1 as windows-1252.
		{"/latin1-pragma", "text/html", charmap.Windows1252, shell(`<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">`, "Größe"), "Größe"},
		{"/sjis", "text/html; charset=Shift_JIS", japanese.ShiftJIS, shell("", "こんにちは"), "こんにちは"},
		{"/undeclared", "text/html", nil, shell("", "plain"), "plain"},
	}
}

func encodePage(t *testing.T, p legacyPage) []byte {
	t.Helper()
	if p.enc == nil {
		return []byte(p.body)
	}
	b, err := p.enc.NewEncoder().Bytes([]byte(p.body))
	if err != nil {
		t.Fatalf("%s: %v", p.path, err)
	}
	return b
}

// legacyOrigin serves legacyPages, and a UTF-16 page at /utf16.
func legacyOrigin(t *testing.T) (http.Handler, []byte) {
	pages := legacyPages()
	var u16 bytes.Buffer
	for _, r := range utf16.Encode([]rune(`<html><body><section id="hero" data-edgeseg-slot="hero"><p>default</p></section></body></html>`)) {
		u16.WriteByte(byte(r))
		u16.WriteByte(byte(r >> 8))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/utf16" {
			w.Header().Set("Content-Type", "text/html; charset=utf-16le")
			w.Write(u16.Bytes())
			return
		}
		for _, p := range pages {
			if p.path == r.URL.Path {
				w.Header().Set("Content-Type", p.contentType)
				w.Write(encodePage(t, p))
				return
			}
		}
		http.NotFound(w, r)
	}), u16.Bytes()
}

// The deal-seekers hero of the example templates, as a reader sees it: it
// has an em dash, which windows-1252 has and Shift_JIS lacks.
const dealHero = "You have been hunting bargains — here is"

// TestLegacyEncodingsGetBlocksInTheirEncoding: blocks are written in UTF-8,
// and a page served in windows-1252 or Shift_JIS gets them in its own
// encoding, characters it lacks as character references; a page that does
// not say gets references for all non-ASCII; a UTF-16 page is left alone.
func TestLegacyEncodingsGetBlocksInTheirEncoding(t *testing.T) {
	origin, u16 := legacyOrigin(t)
	// Holdouts off: every visitor here must see the block.
	s := startStack(t, origin, noHoldouts)
	for _, p := range legacyPages() {
		t.Run(p.path, func(t *testing.T) {
			b := s.browser(uaDesktop)
			_, body := b.page(p.path + "?utm_campaign=promo")
			if !strings.Contains(body, `data-edgeseg-segment="deal-seekers"`) {
				t.Fatalf("not personalized:\n%q", body)
			}
			read := body
			if p.enc != nil {
				d, err := p.enc.NewDecoder().String(body)
				if err != nil {
					t.Fatal(err)
				}
				read = d
			} else if strings.ContainsFunc(body, func(r rune) bool { return r > 0x7f }) {
				t.Fatalf("undeclared page got raw non-ASCII bytes:\n%q", body)
			}
			read = html.UnescapeString(read)
			if !strings.Contains(read, dealHero) || !strings.Contains(read, p.own) {
				t.Fatalf("page reads\n%s\nwant %q and the origin's %q", read, dealHero, p.own)
			}
		})
	}
	t.Run("/utf16", func(t *testing.T) {
		_, body := s.browser(uaDesktop).page("/utf16?utm_campaign=promo")
		if body != string(u16) {
			t.Fatalf("UTF-16 page changed:\n%q", body)
		}
	})
}

// TestRealBrowserReadsLegacyEncodings has Chromium render the pages: the
// hero's text must read as written, whatever the page's encoding.
func TestRealBrowserReadsLegacyEncodings(t *testing.T) {
	exe := findChromium(t)
	origin, _ := legacyOrigin(t)
	s := startStack(t, origin, noHoldouts)
	ctx := newBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Emulate(desktop)); err != nil {
		t.Fatal(err)
	}
	for _, p := range legacyPages() {
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+p.path+"?utm_campaign=promo"), chromedp.WaitVisible(`#own`)); err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		hero, err := chromedp.Run(ctx, chromedp.Text(`#hero p`))
		if err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		own, err := chromedp.Run(ctx, chromedp.Text(`#own`))
		if err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		if !strings.Contains(hero, dealHero) || own != p.own {
			t.Errorf("%s: hero %q, own %q; want %q and %q", p.path, hero, own, dealHero, p.own)
		}
	}
}
