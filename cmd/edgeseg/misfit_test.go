package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/edgeseg/edgeseg/templates/inject"
)

// misfitPage has slots in elements that not every block fits: a
// paragraph, a table row, a link, a form, a button, a list item, an SVG
// text; one in a web component's declarative shadow root, which the
// paragraph around the component is not around; and one in a <template>,
// which browsers do not show.
const misfitPage = `<!doctype html><html><head><title>Slots</title></head><body>
<main>
<p id="promo" class="promo" data-edgeseg-slot="promo">Default promo</p>
<p id="note" data-edgeseg-slot="note">Default note</p>
<table><tbody><tr id="row" data-edgeseg-slot="row"><td>Default row</td></tr></tbody></table>
<nav><a id="cta" href="/sale" data-edgeseg-slot="cta">Default link</a></nav>
<a id="card" href="/p/1"><div id="badge" data-edgeseg-slot="badge">Default badge</div></a>
<p id="line">Get <span id="offer" data-edgeseg-slot="offer">10% off</span> today.</p>
<form id="page" action="/postback"><div id="signup" data-edgeseg-slot="signup">Default signup</div>
<button id="buy" type="submit"><span id="label" data-edgeseg-slot="label">Buy</span></button><input id="state" name="state" value="s"></form>
<ul id="menu"><li id="entry"><a href="/deals"><span id="entrylabel" data-edgeseg-slot="entry">Deals</span></a></li></ul>
<svg id="badge-art" viewBox="0 0 40 10"><text id="tag" data-edgeseg-slot="tag" x="0" y="9">New</text></svg>
<svg id="price-art" viewBox="0 0 40 10"><text id="price" data-edgeseg-slot="price" x="0" y="9">$20</text></svg>
<p id="ship-line">Ships <x-eta id="eta"><template shadowrootmode="open"><span id="shipping" data-edgeseg-slot="shipping">in 3 days</span></template></x-eta> from stock.</p>
<template id="later"><div id="hidden" data-edgeseg-slot="hidden">Default hidden</div></template>
</main>
</body></html>`

// misfitBlocks are the mobile segment's blocks for misfitPage's slots:
// eight that browsers would move out of their slot element (or, for a form,
// drop while taking its fields), four that fit, and one for a slot that is
// never shown.
var misfitBlocks = map[string]string{
	"promo/mobile.hbs": `<div class="deal">Mobile deal</div>`,        // a <div> closes the <p>
	"note/mobile.hbs":  `<b>Mobile</b> note`,                         // fits
	"row/mobile.hbs":   `<td>Mobile</td><td>row</td>`,                // fits
	"cta/mobile.hbs":   `<a href="/mobile">Mobile</a> <em>link</em>`, // a link in the link
	"badge/mobile.hbs": `<a href="/m">Mobile</a> badge`,              // a link in the card's link
	"offer/mobile.hbs": `<div class="deal">20% off</div>`,            // a <div> in a sentence
	// a form in the page's form: its fields would go with the page's
	"signup/mobile.hbs": `<form action="/subscribe"><input class="deal" name="email"><button>Join</button></form>`,
	"label/mobile.hbs":  `<button class="deal">Buy now</button>`,       // a button in the button
	"entry/mobile.hbs":  `<li class="deal">Mobile deals</li>`,          // a list item in the menu's
	"tag/mobile.hbs":    `<b class="deal">Sale</b>`,                    // HTML in an SVG <text>
	"price/mobile.hbs":  `<tspan font-weight="bold">$15</tspan> today`, // fits: SVG in SVG
	// fits: in the shadow root, no paragraph is around the slot
	"shipping/mobile.hbs": `<div class="fast">tomorrow</div>`,
	"hidden/mobile.hbs":   `<b class="deal">Hidden deal</b>`, // a <template>'s slot is not filled
}

func startMisfitStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	for name, body := range misfitBlocks {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(misfitPage))
	})
	return startStack(t, origin, func(y string) string {
		return strings.Replace(noHoldouts(y), mustAbs(t, "../../examples/templates"), dir, 1)
	})
}

// TestBlocksThatDoNotFitTheirSlotElement: a block browsers would move out
// of its slot element (a <div> out of a <p>, a link out of a link) leaves
// the slot with the origin's content, and the editor is told why; blocks
// that fit fill their slots.
func TestBlocksThatDoNotFitTheirSlotElement(t *testing.T) {
	s := startMisfitStack(t)
	resp, body := s.browser(uaIPhone).page("/")
	if h := resp.Header.Get("X-Edgeseg-Slot-Problems"); h != "" {
		t.Errorf("a visitor was told the slots' problems: %s", h)
	}
	lacks(t, "page", body,
		`<p id="promo" class="promo" data-edgeseg-slot="promo">Default promo</p>`,
		`<p id="note" data-edgeseg-slot="note" data-edgeseg-segment="mobile"><b>Mobile</b> note</p>`,
		`<tr id="row" data-edgeseg-slot="row" data-edgeseg-segment="mobile"><td>Mobile</td><td>row</td></tr>`,
		`<a id="cta" href="/sale" data-edgeseg-slot="cta">Default link</a>`,
		`<div id="badge" data-edgeseg-slot="badge">Default badge</div>`,
		`<span id="offer" data-edgeseg-slot="offer">10% off</span>`,
		`<div id="signup" data-edgeseg-slot="signup">Default signup</div>`,
		`<span id="label" data-edgeseg-slot="label">Buy</span>`,
		`<span id="entrylabel" data-edgeseg-slot="entry">Deals</span>`,
		`<text id="tag" data-edgeseg-slot="tag" x="0" y="9">New</text>`,
		`<text id="price" data-edgeseg-slot="price" x="0" y="9" data-edgeseg-segment="mobile"><tspan font-weight="bold">$15</tspan> today</text>`,
		`<span id="shipping" data-edgeseg-slot="shipping" data-edgeseg-segment="mobile"><div class="fast">tomorrow</div></span>`,
		`<div id="hidden" data-edgeseg-slot="hidden">Default hidden</div>`,
	)
	logs := s.stderr.String()
	lacks(t, "log", logs,
		`promo/mobile.hbs: does not fit the slot's <p>: the block holds an element that closes a paragraph`,
		`cta/mobile.hbs: does not fit the slot's <a>: the block holds a link`,
		`badge/mobile.hbs: does not fit the slot's <div>: the slot is inside a link, and the block holds one`,
		`offer/mobile.hbs: does not fit the slot's <span>: the slot is inside a paragraph`,
		`signup/mobile.hbs: does not fit the slot's <div>: the slot is a form or inside one, and the block holds a form`,
		`label/mobile.hbs: does not fit the slot's <span>: the slot is inside a <button>, and the block holds one`,
		`entry/mobile.hbs: does not fit the slot's <span>: the slot is inside a list item`,
		`tag/mobile.hbs: does not fit the slot's <text>: the slot is an SVG or MathML element`,
	)
	if strings.Contains(logs, "note/mobile.hbs") || strings.Contains(logs, "row/mobile.hbs") || strings.Contains(logs, "price/mobile.hbs") || strings.Contains(logs, "shipping/mobile.hbs") {
		t.Errorf("a block that fits was refused:\n%s", logs)
	}

	// An editor previewing the segment is told which slots kept their
	// default, and why.
	m := NewMain()
	var out strings.Builder
	m.Stdout, m.Stderr = &out, io.Discard
	m.ParseFlags([]string{"preview-token", "--config", s.cfg, "--segment", "mobile"})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, _ = s.browser(uaDesktop).page("/?edgeseg_preview=" + strings.TrimSpace(out.String()))
	h := resp.Header.Get("X-Edgeseg-Slot-Problems")
	lacks(t, "preview header", h,
		"promo (mobile): its block does not fit the slot: the block holds an element that closes a paragraph",
		"cta (mobile): its block does not fit the slot: the block holds a link",
		"badge (mobile): its block does not fit the slot: the slot is inside a link",
		"offer (mobile): its block does not fit the slot: the slot is inside a paragraph",
		"signup (mobile): its block does not fit the slot: the slot is a form or inside one",
		"label (mobile): its block does not fit the slot: the slot is inside a <button>",
		"entry (mobile): its block does not fit the slot: the slot is inside a list item",
		"tag (mobile): its block does not fit the slot: the slot is an SVG or MathML element",
	)
	if strings.Contains(h, "note (") || strings.Contains(h, "row (") || strings.Contains(h, "price (") || strings.Contains(h, "shipping (") {
		t.Errorf("preview header names a slot that was filled: %q", h)
	}
}

// TestRealBrowserKeepsBlocksInTheirSlots: in Chromium, every slot of the
// page holds exactly what edgeseg put in it: the fitting blocks, and the
// origin's content where a block would not have stayed.
func TestRealBrowserKeepsBlocksInTheirSlots(t *testing.T) {
	exe := findChromium(t)
	s := startMisfitStack(t)
	ctx := newBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Emulate(device.IPhone13), chromedp.Navigate(s.url+"/"), chromedp.WaitReady(`#cta`)); err != nil {
		t.Fatal(err)
	}
	inner := func(sel string) string {
		t.Helper()
		h, err := chromedp.Run(ctx, chromedp.InnerHTML(sel))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	promo, note, row, cta, badge, line := inner(`#promo`), inner(`#note`), inner(`#row`), inner(`#cta`), inner(`#badge`), inner(`#line`)
	signup, buy, menu, tag, price := inner(`#signup`), inner(`#buy`), inner(`#menu`), inner(`#tag`), inner(`#price`)
	card, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("badge").parentElement.id == "card"`))
	if err != nil {
		t.Fatal(err)
	}
	if !card {
		t.Error("the badge slot is no longer inside the card's link")
	}
	owner, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.getElementById("state").form && document.getElementById("state").form.id)`))
	if err != nil {
		t.Fatal(err)
	}
	if owner != "page" {
		t.Errorf("the page's own field belongs to form %q, want the page's form", owner)
	}
	deals, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".deal, a[href='/mobile'], a[href='/m']").length`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ slot, got, want string }{
		{"promo", promo, "Default promo"},
		{"note", note, "<b>Mobile</b> note"},
		{"row", row, "<td>Mobile</td><td>row</td>"},
		{"cta", cta, "Default link"},
		{"badge", badge, "Default badge"},
		{"line", line, `Get <span id="offer" data-edgeseg-slot="offer">10% off</span> today.`},
		{"signup", signup, "Default signup"},
		{"buy", buy, `<span id="label" data-edgeseg-slot="label">Buy</span>`},
		{"menu", menu, `<li id="entry"><a href="/deals"><span id="entrylabel" data-edgeseg-slot="entry">Deals</span></a></li>`},
		{"tag", tag, "New"},
		{"price", price, `<tspan font-weight="bold">$15</tspan> today`},
	} {
		if c.got != c.want {
			t.Errorf("#%s holds %q, want %q", c.slot, c.got, c.want)
		}
	}
	if deals != 0 {
		t.Errorf("%d elements of refused blocks are in the page", deals)
	}
	svg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(document.querySelector("#price tspan") && document.querySelector("#price tspan").namespaceURI)`))
	if err != nil {
		t.Fatal(err)
	}
	if svg != "http://www.w3.org/2000/svg" {
		t.Errorf("the <tspan> filling the SVG slot is in namespace %q, want SVG's", svg)
	}
	// The web component's shadow root holds the block, in its slot, and
	// the paragraph around the component all of its text.
	shadow, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const root = document.getElementById("eta").shadowRoot;
		const slot = root && root.getElementById("shipping");
		return [slot ? slot.innerHTML : "no slot", document.getElementById("ship-line").textContent].join(" | ");
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `<div class="fast">tomorrow</div> | Ships  from stock.`; shadow != want {
		t.Errorf("the shadow root's slot and the paragraph around it: %q, want %q", shadow, want)
	}
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("later").content.getElementById("hidden").innerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if hidden != "Default hidden" {
		t.Errorf("the <template>'s slot holds %q", hidden)
	}
}

// TestValidateChecksBlocksAgainstAPage: `validate --page` reads a page
// saved from the site and reports each block that would not fit its
// slot's element there, and slots that are never filled.
func TestValidateChecksBlocksAgainstAPage(t *testing.T) {
	dir := t.TempDir()
	for name, body := range misfitBlocks {
		os.MkdirAll(filepath.Join(dir, "templates", filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, "templates", name), []byte(body), 0o644)
	}
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("origin:\n  url: http://127.0.0.1:1\nsegments:\n  - name: mobile\n    rule: 'device == \"mobile\"'\n"), 0o644)
	page := filepath.Join(dir, "page.html")
	os.WriteFile(page, []byte(strings.Replace(misfitPage, "</main>",
		`<aside data-edgeseg-slot="side">Default side</aside><div data-edgeseg-slot="signups">Join</div><div data-edgeseg-slot="broken"/><textarea data-edgeseg-slot="comment">Hi</textarea></main>`, 1)), 0o644)
	var out strings.Builder
	m := NewMain()
	m.Stdout, m.Stderr = &out, &out
	m.ParseFlags([]string{"validate", "--config", cfg, "--page", page})
	if ec, ok := m.Run(context.Background()).(exitCoder); !ok || ec.ExitCode() != 1 {
		t.Fatalf("want exit 1:\n%s", out.String())
	}
	lacks(t, "validate output", out.String(),
		`error: `+page+`: slot "promo" (<p>): `+filepath.Join(dir, "templates", "promo", "mobile.hbs")+` does not fit it: the block holds an element that closes a paragraph`,
		`error: `+page+`: slot "cta" (<a>): `+filepath.Join(dir, "templates", "cta", "mobile.hbs")+` does not fit it: the block holds a link`,
		`error: `+page+`: slot "badge" (<div>): `+filepath.Join(dir, "templates", "badge", "mobile.hbs")+` does not fit it: the slot is inside a link`,
		`error: `+page+`: slot "offer" (<span>): `+filepath.Join(dir, "templates", "offer", "mobile.hbs")+` does not fit it: the slot is inside a paragraph`,
		`error: `+page+`: slot "signup" (<div>): `+filepath.Join(dir, "templates", "signup", "mobile.hbs")+` does not fit it: the slot is a form or inside one`,
		`error: `+page+`: slot "label" (<span>): `+filepath.Join(dir, "templates", "label", "mobile.hbs")+` does not fit it: the slot is inside a <button>`,
		`error: `+page+`: slot "entry" (<span>): `+filepath.Join(dir, "templates", "entry", "mobile.hbs")+` does not fit it: the slot is inside a list item`,
		`error: `+page+`: slot "tag" (<text>): `+filepath.Join(dir, "templates", "tag", "mobile.hbs")+` does not fit it: the slot is an SVG or MathML element`,
		`warning: `+page+`: slot "side" has no block: it always shows the page's own content`+"\n",
		`warning: `+page+`: slot "signups" has no block: it always shows the page's own content: did you mean "signup"?`,
		`warning: `+page+`: slot "broken" is never filled: self-closing (in HTML "/>" closes nothing`,
		`warning: `+page+`: slot "comment" is never filled: text-only element (a block's markup would show there as text`,
		`warning: `+page+`: slot "hidden" is never filled: inside a template (browsers do not show a <template>'s content`,
	)
	for _, fits := range []string{`slot "note"`, `slot "row"`, `slot "shipping"`} {
		if strings.Contains(out.String(), fits) {
			t.Errorf("a block that fits was reported (%s):\n%s", fits, out.String())
		}
	}
	if strings.Contains(out.String(), "no slot markers") {
		t.Errorf("a page with slots said to have none:\n%s", out.String())
	}

	// A page without a single marker (saved from the wrong page, or before
	// the site marked it) is said to be so.
	os.WriteFile(page, []byte("<!doctype html><title>t</title><p>Nothing marked</p>"), 0o644)
	out.Reset()
	m = NewMain()
	m.Stdout, m.Stderr = &out, &out
	m.ParseFlags([]string{"validate", "--config", cfg, "--page", page})
	_ = m.Run(context.Background())
	lacks(t, "validate output", out.String(), `warning: `+page+`: no slot markers: nothing on this page is personalized`)
}

// TestRealBrowserPlacesSlotsAsTheScannerDoes: around SVG and MathML left
// open or written oddly (an icon's <svg> unclosed in a button, a </br> in
// an SVG text, a <font color> in SVG), the scanner tells a slot the place
// Chromium puts it in: inside SVG or MathML or not, and inside a
// paragraph, a link or a button or not.
func TestRealBrowserPlacesSlotsAsTheScannerDoes(t *testing.T) {
	exe := findChromium(t)
	ctx := newBrowser(t, exe)
	for _, page := range []string{
		`<p>Buy <button><svg><use href="#i"></button><span id="slot" data-edgeseg-slot="s">x</span> now</p>`,
		`<a href="/"><svg><path d=""></a><span id="slot" data-edgeseg-slot="s">x</span>`,
		`<svg><text>x</br><span id="slot" data-edgeseg-slot="s">y</span></text></svg>`,
		`<p><svg><font color="red"><b id="slot" data-edgeseg-slot="s">x</b></font></svg>`,
		`<p><svg><font><g id="slot" data-edgeseg-slot="s">x</g></font></svg>`,
		`<form><math></form><mrow id="slot" data-edgeseg-slot="s">x</mrow></math>`,
		`<math><annotation-xml><svg><foreignObject><p><span id="slot" data-edgeseg-slot="s">x</span></foreignObject></svg></annotation-xml></math>`,
		`<math><annotation-xml encoding="text/html"><a href="/"><div id="slot" data-edgeseg-slot="s">x</div></a></annotation-xml></math>`,
		`<svg><style>.a{}</style><text id="slot" data-edgeseg-slot="s">x</text></svg>`,
		`<svg><script>"<p>"</script><span id="slot" data-edgeseg-slot="s">x</span>`,
		`<button><table><tr><td><svg><g></button><text id="slot" data-edgeseg-slot="s">x</text>`,
		`<ul><li><ol><svg><g></li><text id="slot" data-edgeseg-slot="s">x</text>`,
		// Inside an element that holds HTML, an end tag is read as in SVG
		// and MathML while no HTML element is open in it; with one open,
		// it is ignored.
		`<svg><g><svg><foreignObject><div>t</div></svg><text id="slot" data-edgeseg-slot="s">x</text></g></svg>`,
		`<svg><g><svg><foreignObject><div>t</svg><text id="slot" data-edgeseg-slot="s">x</text>`,
		`<svg><foreignObject><p>t</foreignObject><text id="slot" data-edgeseg-slot="s">x</text>`,
		`<svg><foreignObject><p>t<div>d</div></foreignObject><text id="slot" data-edgeseg-slot="s">x</text>`,
		`<svg><foreignObject><b>t</foreignObject><text id="slot" data-edgeseg-slot="s">x</text>`,
		`<math><mi><b>x</mi><mrow id="slot" data-edgeseg-slot="s">x</mrow>`,
		`<math><mi><b>x</b></mi><mrow id="slot" data-edgeseg-slot="s">x</mrow>`,
		`<math><annotation-xml encoding="text/html"><p>x</annotation-xml></math><mrow id="slot" data-edgeseg-slot="s">x</mrow>`,
		`<math><annotation-xml encoding="text/html"><ul><li>a<li>b</ul></annotation-xml><mrow id="slot" data-edgeseg-slot="s">x</mrow>`,
		`<svg><g><svg><foreignObject><svg><font color="red">x</font></svg><text id="slot" data-edgeseg-slot="s">x</text>`,
		// A declarative shadow root is a tree of its own: nothing around
		// its template is around the slot inside it.
		`<p>Get <x-c><template shadowrootmode="open"><span id="slot" data-edgeseg-slot="s">x</span></template></x-c> now</p>`,
		`<a href="/"><x-c><template shadowrootmode="open"><p><span id="slot" data-edgeseg-slot="s">x</span></p></template></x-c></a>`,
		`<button><x-c><template shadowrootmode="open"><b><span id="slot" data-edgeseg-slot="s">x</span></b></template></x-c></button>`,
		`<x-c><template shadowrootmode="open"><svg><text id="slot" data-edgeseg-slot="s">x</text></svg></template></x-c>`,
		`<p>Get <a href="/"><x-c><template shadowrootmode="open"><div>d</div><p>left open<svg><g></template></x-c><span id="slot" data-edgeseg-slot="s">x</span></a></p>`,
	} {
		var at inject.Place
		found := false
		inject.Scan([]byte(page)).Apply(nil, []byte(page), func(_ []byte, p inject.Place) (inject.Block, bool) {
			at, found = p, true
			return inject.Block{}, false
		}, nil)
		if !found {
			t.Errorf("%s: the scanner found no slot", page)
			continue
		}
		if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,"+url.PathEscape("<!doctype html><body>"+page))); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			// The slot, in the page or in an open shadow root.
			const find = (root) => {
				const s = root.getElementById("slot");
				if (s) return s;
				for (const e of root.querySelectorAll("*")) {
					const f = e.shadowRoot && find(e.shadowRoot);
					if (f) return f;
				}
				return null;
			};
			const s = find(document), up = s && s.parentElement;
			if (!s) return "no slot";
			// A paragraph or button is in reach unless a table, cell or
			// object is between (Place.InParagraph, Place.InButton);
			// closest() stays inside the slot's shadow tree.
			const shield = "button, table, td, th, caption, object, applet, marquee";
			const reach = (name) => !!up && (up.closest(name + ", " + shield) || {}).tagName == name.toUpperCase();
			return [s.namespaceURI != "http://www.w3.org/1999/xhtml", reach("p"), !!up && !!up.closest("a"), reach("button")].join(" ");
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%v %v %v %v", at.InForeign, at.InParagraph, at.InLink, at.InButton); got != want {
			t.Errorf("%s: Chromium places the slot (foreign, paragraph, link, button) %s, the scanner %s", page, got, want)
		}
	}
}

// TestRealBrowserReadsDoctypesAsTheScannerDoes: for each page start in
// templates/inject/testdata/doctypes.txt (doctypes, none, broken ones,
// what may come before one), Chromium builds the page in the mode the
// file says, and the scanner tells a slot after a <table> inside a <p> to
// be in the paragraph exactly where Chromium keeps it there: in quirks
// mode, where the table leaves the paragraph open.
func TestRealBrowserReadsDoctypesAsTheScannerDoes(t *testing.T) {
	exe := findChromium(t)
	ctx := newBrowser(t, exe)
	data, err := os.ReadFile("../../templates/inject/testdata/doctypes.txt")
	if err != nil {
		t.Fatal(err)
	}
	const body = `<p>Deals<table><tr><td>1</td></tr></table><span id="slot" data-edgeseg-slot="s">x</span> today</p>`
	checked := 0
	for _, line := range strings.Split(string(data), "\n") {
		mode, quoted, ok := strings.Cut(line, "\t")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		start, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("doctypes.txt: %q: %v", line, err)
		}
		page := start + body
		var at inject.Place
		inject.Scan([]byte(page)).Apply(nil, []byte(page), func(_ []byte, p inject.Place) (inject.Block, bool) {
			at = p
			return inject.Block{}, false
		}, nil)
		if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,"+url.PathEscape(page))); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const s = document.getElementById("slot");
			const quirks = document.compatMode == "BackCompat" ? "quirks" : "standards";
			return quirks + " " + !!(s && s.closest("p"));
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s %v", mode, at.InParagraph); got != want {
			t.Errorf("%q: Chromium builds the page (mode, slot in the paragraph) %s; the file and the scanner say %s", start, got, want)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("only %d page starts checked", checked)
	}
}

// TestEveryIgnoredMarkerHasAHint: validate tells the editor what each
// kind of marker that cannot be filled needs.
func TestEveryIgnoredMarkerHasAHint(t *testing.T) {
	seen := map[string]string{}
	for _, r := range inject.IgnoredReasons() {
		h := ignoredHint(r)
		if h == ignoredHint("no such reason") || seen[h] != "" {
			t.Errorf("reason %q has no hint of its own: %q", r, h)
		}
		seen[h] = r
	}
}

// TestRealBrowserEndsMisnestedSlotsEarly: for slots whose content the
// scanner refuses as misnested, Chromium ends the slot before the end tag
// that matches by name: text the origin shows after the slot is not in it,
// so a block filling up to that end tag would have replaced it.
func TestRealBrowserEndsMisnestedSlotsEarly(t *testing.T) {
	exe := findChromium(t)
	ctx := newBrowser(t, exe)
	for _, page := range []string{
		`<li><span id="slot" data-edgeseg-slot="s"><em><span>Sale</em></span> <i>after</i></span></li>`,
		`<div><span id="slot" data-edgeseg-slot="s">a</div><i>after</i></span><p>c</p>`,
		`<b><span id="slot" data-edgeseg-slot="s">a</b><i>after</i></span>`,
		`<p><span id="slot" data-edgeseg-slot="s">a<div>b</div><i>after</i></span></p>`,
		`<ul><li><span id="slot" data-edgeseg-slot="s">a<li>b</li><i>after</i></span></li></ul>`,
		`<section><span id="slot" data-edgeseg-slot="s">a</section><i>after</i></span>`,
	} {
		plan := inject.Scan([]byte(page))
		if ig := plan.Ignored(); len(ig) != 1 || ig[0].Reason != inject.IgnoredMisnested {
			t.Errorf("%s: the scanner does not refuse the slot: %v", page, ig)
			continue
		}
		if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,"+url.PathEscape("<!doctype html><body>"+page))); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const s = document.getElementById("slot"), i = document.querySelector("i");
			return !s ? "no slot" : !i ? "no text after" : String(s.contains(i));
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if got != "false" {
			t.Errorf("%s: Chromium keeps the text after the slot in it (%s): the slot need not be refused", page, got)
		}
	}
}

// TestRealBrowserReadsEndTagsInSVGEitherWay: an end tag inside an <svg>
// that names none of its elements closes the SVG in Chromium when an
// HTML element of its name is open around it, and is ignored when none
// is. The scanner does not follow those elements, so it refuses a slot
// after either (inject.IgnoredUnclear); here Chromium shows that both
// readings happen.
func TestRealBrowserReadsEndTagsInSVGEitherWay(t *testing.T) {
	exe := findChromium(t)
	ctx := newBrowser(t, exe)
	for _, tc := range []struct{ page, ns string }{
		{`<div class="icon"><svg><path d="M0 0"></div><section id="slot" data-edgeseg-slot="s">x</section>`, "http://www.w3.org/1999/xhtml"},
		{`<span class="icon"><svg><g></span><a id="slot" href="/x" data-edgeseg-slot="s">x</a>`, "http://www.w3.org/1999/xhtml"},
		{`<main><svg><g></div><a id="slot" data-edgeseg-slot="s">x</a></g></svg>`, "http://www.w3.org/2000/svg"},
		{`<main><svg><g></span><text id="slot" data-edgeseg-slot="s">x</text></g></svg>`, "http://www.w3.org/2000/svg"},
	} {
		plan := inject.Scan([]byte(tc.page))
		if ig := plan.Ignored(); len(ig) != 1 || ig[0].Reason != inject.IgnoredUnclear {
			t.Errorf("%s: the scanner does not refuse the slot: %v", tc.page, ig)
			continue
		}
		if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,"+url.PathEscape("<!doctype html><body>"+tc.page))); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const s = document.getElementById("slot");
			return s ? s.namespaceURI : "no slot";
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.ns {
			t.Errorf("%s: Chromium puts the slot in %s, want %s", tc.page, got, tc.ns)
		}
	}
}
