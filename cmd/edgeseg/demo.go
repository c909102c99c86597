package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// runDemo starts the bundled demo shop as the origin on a loopback port and
// the proxy in front of it, with examples/edgeseg.yaml (in the image,
// EDGESEG_CONFIG) unless --config says otherwise.
func (m *Main) runDemo(ctx context.Context, args []string) error {
	fs := m.flagSet("demo")
	defaultConfig := "examples/edgeseg.yaml"
	if env := m.getenv("EDGESEG_CONFIG"); env != "" {
		defaultConfig = env
	}
	cfgPath := fs.String("config", defaultConfig, "config file")
	site := fs.String("site", "", "demo site directory (default: site/ beside the config)")
	listen := fs.String("listen", "", "listen address (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *site == "" {
		*site = filepath.Join(filepath.Dir(*cfgPath), "site")
	}
	if _, err := os.Stat(filepath.Join(*site, "layout.html")); err != nil {
		return fmt.Errorf("demo: no demo shop in %s (%w): run edgeseg demo from the edgeseg source tree, or give --config FILE and --site DIR", *site, err)
	}
	origin, err := NewDemoOrigin(*site)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo origin: %w", err)
	}
	srv := &http.Server{Handler: origin, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	m.onClose(func() error { return srv.Close() })

	env := append([]string{"EDGESEG_ORIGIN_URL=http://" + ln.Addr().String()}, m.Environ...)
	if *listen != "" {
		env = append(env, "EDGESEG_LISTEN="+*listen)
	}
	m.Environ = env
	cfg, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "demo shop origin on http://%s — open the proxy at http://%s\n", ln.Addr(), displayAddr(cfg.Listen))
	m.demo = true
	return m.serve(ctx, cfg)
}

func displayAddr(a string) string {
	if strings.HasPrefix(a, ":") {
		return "localhost" + a
	}
	return a
}

// DemoOrigin is the demo shop: a few server-rendered pages with slots,
// gzip-compressed when the client accepts it, as many real origins are.
type DemoOrigin struct {
	page    *template.Template
	catalog map[string][]demoProduct
	static  http.Handler
}

type demoProduct struct {
	ID    string  `yaml:"id"`
	Name  string  `yaml:"name"`
	Price float64 `yaml:"price"`
}

// NewDemoOrigin loads the demo shop from dir (layout.html, catalog.yaml, static/).
func NewDemoOrigin(dir string) (*DemoOrigin, error) {
	t, err := template.ParseFiles(filepath.Join(dir, "layout.html"))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "catalog.yaml"))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &DemoOrigin{page: t, static: http.StripPrefix("/static/", http.FileServer(http.Dir(filepath.Join(dir, "static"))))}
	if err := yaml.Unmarshal(raw, &d.catalog); err != nil {
		return nil, fmt.Errorf("demo: catalog.yaml: %w", err)
	}
	return d, nil
}

func (d *DemoOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/static/") {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		d.static.ServeHTTP(w, r)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var title string
	var main strings.Builder
	switch {
	case r.URL.Path == "/":
		title = "Home"
		main.WriteString("<h2>Categories</h2><div class=\"grid\">")
		for _, c := range d.categories() {
			fmt.Fprintf(&main, `<a class="card" href="/category/%s">%s</a>`, c, template.HTMLEscapeString(titleWords(c)))
		}
		main.WriteString("</div>")
	case parts[0] == "category" && len(parts) == 2 && d.catalog[parts[1]] != nil:
		c := parts[1]
		title = titleWords(c)
		fmt.Fprintf(&main, "<h2>%s</h2><div class=\"grid\">", template.HTMLEscapeString(title))
		for _, p := range d.catalog[c] {
			fmt.Fprintf(&main, `<div class="card"><a href="/product/%s/%s">%s</a><p class="price">$%.2f</p></div>`, c, p.ID, template.HTMLEscapeString(p.Name), p.Price)
		}
		main.WriteString("</div>")
	case parts[0] == "product" && len(parts) == 3:
		p, ok := d.product(parts[1], parts[2])
		if !ok {
			http.NotFound(w, r)
			return
		}
		title = p.Name
		fmt.Fprintf(&main, `<h2>%s</h2><p class="price">$%.2f</p><form method="post" action="/cart/add"><input type="hidden" name="id" value="%s"><button>Add to cart</button></form>`,
			template.HTMLEscapeString(p.Name), p.Price, p.ID)
	case r.URL.Path == "/cart/add" && r.Method == http.MethodPost:
		http.Redirect(w, r, "/cart", http.StatusSeeOther)
		return
	case r.URL.Path == "/cart":
		title = "Cart"
		main.WriteString(`<h2>Your cart</h2><p>Your items are waiting.</p><a href="/checkout">Checkout</a>`)
	case r.URL.Path == "/checkout":
		title = "Checkout"
		main.WriteString(`<h2>Checkout</h2><a href="/checkout/complete">Place order</a>`)
	case r.URL.Path == "/checkout/complete":
		title = "Thank you"
		main.WriteString(`<h2>Thank you for your order!</h2>`)
	case r.URL.Path == "/search":
		title = "Search"
		fmt.Fprintf(&main, `<h2>Results for “%s”</h2><p>No results in the demo.</p>`, template.HTMLEscapeString(r.URL.Query().Get("q")))
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Add("Vary", "Accept-Encoding")
	var out interface {
		Write([]byte) (int, error)
	} = w
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		defer zw.Close()
		out = zw
	}
	err := d.page.Execute(out, struct {
		Title string
		Main  template.HTML
	}{title, template.HTML(main.String())}) //nolint:gosec // built from escaped parts above
	if err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		fmt.Fprintln(os.Stderr, "demo origin:", err)
	}
}

func (d *DemoOrigin) categories() []string {
	cs := make([]string, 0, len(d.catalog))
	for c := range d.catalog {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

func (d *DemoOrigin) product(cat, id string) (demoProduct, bool) {
	for _, p := range d.catalog[cat] {
		if p.ID == id {
			return p, true
		}
	}
	return demoProduct{}, false
}

// titleWords upper-cases the first letter of each word of a demo catalog
// name, ASCII ("home-audio" is "Home-Audio", "4k-tvs" "4k-Tvs").
func titleWords(s string) string {
	b := []byte(s)
	for i := range b {
		if (i == 0 || !inWord(b[i-1])) && 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

func inWord(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}
