package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
)

// findChromium returns Debian's chromium. Under CI (CI=true) a missing
// browser fails the test: .ci/run installs it.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed; .ci/run installs Debian's chromium")
	}
	t.Skip("chromium not installed (apt-get install chromium); the browser test needs it")
	return ""
}

// artifactDir is where screenshots go: $EDGESEG_ARTIFACTS or testdata/artifacts.
func artifactDir(t *testing.T) string {
	d := os.Getenv("EDGESEG_ARTIFACTS")
	if d == "" {
		d = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func newBrowser(t *testing.T, exe string, extra ...chromedp.ExecAllocatorOption) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first call allocates the browser and must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return tctx
}

const chromeDesktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

var desktop = device.Info{Name: "desktop", UserAgent: chromeDesktopUA, Width: 1280, Height: 900, Scale: 1}

// heroSegment returns the hero slot's data-edgeseg-segment, if any.
func heroSegment(t *testing.T, ctx context.Context) (string, bool) {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(`#hero`, "data-edgeseg-segment"))
	if err != nil {
		t.Fatal(err)
	}
	return r.Value, r.Exists
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRealBrowser drives headless Chromium through the demo shop behind
// edgeseg, as a visitor would: browsing the sale makes a deal seeker, a
// phone gets the mobile block, and a visitor who opted out (GPC) gets the
// default content and no profile cookie.
func TestRealBrowser(t *testing.T) {
	exe := findChromium(t)
	// Holdouts off: this test checks what a member sees.
	s := startStack(t, nil, noHoldouts)
	shots := artifactDir(t)

	t.Run("deal seeker", func(t *testing.T) {
		ctx := newBrowser(t, exe)
		err := chromedp.Do(ctx,
			chromedp.Emulate(desktop),
			chromedp.Navigate(s.url+"/"),
			chromedp.Click(`nav a[href="/category/sale"]`, chromedp.NodeVisible), // a real click, as a visitor browses
			chromedp.WaitVisible(`.grid`),
			chromedp.Navigate(s.url+"/category/sale"),
			chromedp.Navigate(s.url+"/category/sale"),
			chromedp.Navigate(s.url+"/"),
			chromedp.WaitVisible(`#hero`),
		)
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, shots, "browser-deal-seeker.png")
		seg, _ := heroSegment(t, ctx)
		heading, err := chromedp.Run(ctx, chromedp.Text(`#hero h1`))
		if err != nil {
			t.Fatal(err)
		}
		if seg != "deal-seekers" || heading != "Deals picked for you" {
			t.Fatalf("hero: segment %q heading %q\n%s", seg, heading, s.stderr.String())
		}
	})

	t.Run("mobile", func(t *testing.T) {
		ctx := newBrowser(t, exe)
		if err := chromedp.Do(ctx, chromedp.Emulate(device.IPhone13), chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(`#hero`)); err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, shots, "browser-mobile.png")
		seg, _ := heroSegment(t, ctx)
		if seg != "mobile" && seg != "mobile-evening" {
			t.Fatalf("phone got hero segment %q", seg)
		}
		sidebar, err := chromedp.Run(ctx, chromedp.Text(`#sidebar h2`))
		if err != nil || sidebar != "Popular this week" {
			t.Fatalf("slot without a block lost its default: %q %v", sidebar, err)
		}
	})

	// A site that loads its pages with fetch() and swaps their body in, as
	// Turbo Drive does (with the header it sends): browsing the sale that
	// way makes a deal seeker, and the home page swapped in shows its block.
	t.Run("pages swapped in by script", func(t *testing.T) {
		ctx := newBrowser(t, exe)
		if err := chromedp.Do(ctx, chromedp.Emulate(desktop), chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(`#hero`)); err != nil {
			t.Fatal(err)
		}
		if seg, ok := heroSegment(t, ctx); ok {
			t.Fatalf("a first-time visitor got segment %q", seg)
		}
		seg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
			let n = 0;
			const visit = async (url) => {
				const r = await fetch(url, {headers: {
					"Accept": "text/vnd.turbo-stream.html, text/html, application/xhtml+xml",
					"X-Turbo-Request-Id": "request-" + (++n),
				}});
				const doc = new DOMParser().parseFromString(await r.text(), "text/html");
				document.body.replaceWith(document.adoptNode(doc.body));
				history.pushState({}, "", url);
			};
			for (let i = 0; i < 3; i++) await visit("/category/sale");
			await visit("/");
			const hero = document.querySelector("#hero");
			return hero ? hero.getAttribute("data-edgeseg-segment") || "(none) " + hero.querySelector("h1").textContent : "(no hero)";
		})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, shots, "browser-script-pages.png")
		if seg != "deal-seekers" {
			t.Fatalf("home page swapped in after three sale pages: hero segment %q\n%s", seg, s.stderr.String())
		}
	})

	t.Run("no consent", func(t *testing.T) {
		ctx := newBrowser(t, exe)
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Sec-GPC": "1"}}); err != nil {
			t.Fatal(err)
		}
		err := chromedp.Do(ctx,
			chromedp.Emulate(desktop),
			chromedp.Navigate(s.url+"/category/sale"),
			chromedp.Navigate(s.url+"/category/sale"),
			chromedp.Navigate(s.url+"/category/sale"),
			chromedp.Navigate(s.url+"/"),
			chromedp.WaitVisible(`#hero`),
		)
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, ctx, shots, "browser-no-consent.png")
		if seg, ok := heroSegment(t, ctx); ok {
			t.Fatalf("opted-out visitor got segment %q", seg)
		}
		res, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cookies {
			if c.Name == "edgeseg" {
				t.Fatalf("profile cookie set without consent: %s", c.Value)
			}
		}
	})

	t.Run("consent withdrawn", func(t *testing.T) {
		ctx := newBrowser(t, exe)
		profile := func() string {
			t.Helper()
			res, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range res.Cookies {
				if c.Name == "edgeseg" {
					return c.Value
				}
			}
			return ""
		}
		if err := chromedp.Do(ctx, chromedp.Emulate(desktop), chromedp.Navigate(s.url+"/category/sale")); err != nil {
			t.Fatal(err)
		}
		if profile() == "" {
			t.Fatal("no profile cookie with consent")
		}
		// The visitor turns on Global Privacy Control: the next page
		// deletes the behavior kept in the browser.
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Sec-GPC": "1"}}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(`#hero`)); err != nil {
			t.Fatal(err)
		}
		if v := profile(); v != "" {
			t.Fatalf("the profile cookie outlived the withdrawal of consent: %s", v)
		}
	})
}
