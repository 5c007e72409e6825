package console

import (
	"net/http"
	"strings"
	"testing"
)

// TestCSRFRefusal: a state-changing request that lacks the page's token, comes from
// another origin, or is not JSON is refused before it reaches the cluster; the same
// request with the token, from the console's own origin, goes through.
func TestCSRFRefusal(t *testing.T) {
	f := newFixture(t, kfakeCluster(t), Options{})
	body := []byte(`{"name": "csrf", "partitions": 1, "replicationFactor": 1}`)
	good := func() map[string]string {
		return map[string]string{"Content-Type": "application/json", csrfHeader: f.con.Token(), "Origin": f.srv.URL}
	}
	for _, tc := range []struct {
		name   string
		change func(h map[string]string)
		want   int
	}{
		{"no token", func(h map[string]string) { delete(h, csrfHeader) }, http.StatusForbidden},
		{"wrong token", func(h map[string]string) { h[csrfHeader] = strings.Repeat("0", 64) }, http.StatusForbidden},
		{"other origin", func(h map[string]string) { h["Origin"] = "http://evil.example" }, http.StatusForbidden},
		{"cross-site fetch", func(h map[string]string) { h["Sec-Fetch-Site"] = "cross-site" }, http.StatusForbidden},
		{"form post", func(h map[string]string) { h["Content-Type"] = "application/x-www-form-urlencoded" }, http.StatusUnsupportedMediaType},
		{"text/plain", func(h map[string]string) { h["Content-Type"] = "text/plain" }, http.StatusUnsupportedMediaType},
	} {
		h := good()
		tc.change(h)
		status, resp := f.do(http.MethodPost, "/api/topics", body, h)
		if status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, resp, tc.want)
		}
	}
	td, err := f.adm.ListTopics(f.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := td["csrf"]; ok {
		t.Fatalf("a refused request created the topic")
	}
	// Without Origin (curl, scripts) the token alone is enough; with it, it must match.
	h := good()
	delete(h, "Origin")
	if status, resp := f.do(http.MethodPost, "/api/topics", body, h); status != http.StatusOK {
		t.Fatalf("good request: %d %s", status, resp)
	}
	// Every DELETE, PUT or PATCH goes through the same checks and is then unknown.
	if status, _ := f.do(http.MethodDelete, "/api/topics/csrf", nil, nil); status != http.StatusForbidden {
		t.Errorf("DELETE without token: %d", status)
	}
}

// TestHostCheck: with allowed hosts set, as the command sets them on loopback, a request
// for another name (a DNS rebinding attack's) is refused, GETs included.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, kfakeCluster(t), Options{AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}})
	for host, want := range map[string]int{
		"":                    http.StatusOK, // the test server's own 127.0.0.1:port
		"localhost:9080":      http.StatusOK,
		"[::1]:9080":          http.StatusOK,
		"attacker.example":    http.StatusForbidden,
		"attacker.example:80": http.StatusForbidden,
	} {
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/api/cluster", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestSecurityHeaders: the page may run only its own scripts and cannot be framed.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, kfakeCluster(t), Options{})
	resp, err := f.srv.Client().Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("index Cache-Control %q: the page holds the token", cc)
	}
}
