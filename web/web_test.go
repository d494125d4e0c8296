package web

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
)

func TestPagesRenderAndEscape(t *testing.T) {
	p, err := Parse()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := p.Render(&b, "home.html", Home{SignedIn: true, Login: "<script>x</script>", Teams: []Team{{"acme", "sre"}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>x") || !strings.Contains(b.String(), "acme/sre") {
		t.Errorf("home page: %s", b.String())
	}
	b.Reset()
	if err := p.Render(&b, "problem.html", Problem{Title: "T", Message: "M", Items: []Link{{Text: "a", URL: "javascript:alert(1)"}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "javascript:alert") {
		t.Error("an unsafe URL reached the page")
	}
	if _, err := fs.Stat(Static(), "style.css"); err != nil {
		t.Error(err)
	}
}
