package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/ghbroker/ghbroker/internal/config"
)

// Markers in the docs.
const (
	// embedPrefix, on the line before a fenced block, names the file under
	// the repository root whose content the block must be, byte for byte:
	// <!-- file: deploy/nginx/ghbroker-auth.conf -->
	embedPrefix = "<!-- file: "
	// configMarker, the first line of a yaml block, marks a complete
	// ghbroker config file: it must pass check-config.
	configMarker = "# ghbroker config"
	// fragmentMarker, the first line of a yaml block, marks keys to add to
	// deploy/base/config.yaml (maps are merged, lists appended, a client
	// replaces the one with its id); the result must pass check-config.
	fragmentMarker = "# ghbroker config fragment"
)

// requiredDocs are the pages the issue asks for.
var requiredDocs = []string{
	"kubernetes.md", "github-oauth-app.md", "ambassador.md", "nginx.md", "traefik.md",
	"envoy.md", "grafana.md", "kubernetes-oidc.md", "istio.md", "metrics.md", "operations.md",
}

// requiredEmbeds are files the docs must show as they are.
var requiredEmbeds = []string{
	"deploy/nginx/ghbroker-auth.conf", "deploy/nginx/example-site.conf",
	"deploy/traefik/middleware.yaml", "deploy/envoy/envoy.yaml",
	"deploy/base/config.yaml", "deploy/grafana/grafana.ini",
	"deploy/ambassador/authservice-grpc.yaml", "deploy/ambassador/http/authservice.yaml",
	"deploy/istio/requestauthentication.yaml", "deploy/monitoring/alerts.yaml",
	"deploy/operations/store-access-pod.yaml",
}

// fence is one fenced code block of a Markdown file.
type fence struct {
	Doc     string
	Line    int // of the opening ```
	Lang    string
	Content string
	Embeds  string // the file named by an embed marker, or ""
}

func (f fence) where() string { return fmt.Sprintf("%s:%d", f.Doc, f.Line) }

// docFiles lists docs/*.md and the README.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, filepath.Join(repoRoot, "README.md"))
}

// parseFences returns the fenced code blocks of a Markdown file. A fence
// may be indented (inside a list item): its content is then read with
// that indentation removed.
func parseFences(t *testing.T, doc string) []fence {
	t.Helper()
	lines := strings.Split(readText(t, doc), "\n")
	var out []fence
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		open, ok := strings.CutPrefix(trimmed, "```")
		if !ok {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		f := fence{Doc: doc, Line: i + 1, Lang: strings.TrimSpace(open)}
		for j := i - 1; j >= 0; j-- {
			if s := strings.TrimSpace(lines[j]); s != "" {
				if name, ok := strings.CutPrefix(s, embedPrefix); ok {
					f.Embeds = strings.TrimSpace(strings.TrimSuffix(name, "-->"))
				}
				break
			}
		}
		var b strings.Builder
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "```"); i++ {
			l := lines[i]
			for n := 0; n < indent && strings.HasPrefix(l, " "); n++ {
				l = l[1:]
			}
			b.WriteString(l)
			b.WriteByte('\n')
		}
		if i == len(lines) {
			t.Errorf("%s: the fence is never closed", f.where())
		}
		f.Content = b.String()
		out = append(out, f)
	}
	return out
}

func allFences(t *testing.T) []fence {
	t.Helper()
	var out []fence
	for _, d := range docFiles(t) {
		out = append(out, parseFences(t, d)...)
	}
	return out
}

// configKeys are the top-level keys of ghbroker's config file.
func configKeys() []string {
	var keys []string
	rt := reflect.TypeFor[config.Config]()
	for i := range rt.NumField() {
		if tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ","); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// firstKey returns the first top-level key of a YAML text, skipping
// comments and blank lines.
func firstKey(content string) string {
	for _, l := range strings.Split(content, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		k, _, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, " ") {
			return ""
		}
		return k
	}
	return ""
}

func firstLine(content string) string {
	l, _, _ := strings.Cut(content, "\n")
	return strings.TrimSpace(l)
}

func TestRequiredDocsExist(t *testing.T) {
	for _, d := range requiredDocs {
		if _, err := os.Stat(filepath.Join(repoRoot, "docs", d)); err != nil {
			t.Errorf("docs/%s: %v", d, err)
		}
	}
}

// TestDocsEmbedFilesVerbatim: a block marked with an embed marker is the
// file, byte for byte, so that what people copy is what the tests check.
func TestDocsEmbedFilesVerbatim(t *testing.T) {
	embedded := map[string]bool{}
	for _, f := range allFences(t) {
		if f.Embeds == "" {
			continue
		}
		embedded[f.Embeds] = true
		raw, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(f.Embeds)))
		if err != nil {
			t.Errorf("%s: embeds %s: %v", f.where(), f.Embeds, err)
			continue
		}
		if !bytes.Equal(raw, []byte(f.Content)) {
			t.Errorf("%s: the block differs from %s; paste the file again", f.where(), f.Embeds)
		}
	}
	for _, want := range requiredEmbeds {
		if !embedded[want] {
			t.Errorf("no doc embeds %s", want)
		}
	}
}

// TestDocConfigSnippetsPassCheckConfig: every yaml block of docs/ that
// configures ghbroker is marked, and every marked block (README too)
// passes check-config, alone or as a fragment added to
// deploy/base/config.yaml.
func TestDocConfigSnippetsPassCheckConfig(t *testing.T) {
	keys := configKeys()
	base, err := os.ReadFile(baseConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range allFences(t) {
		if f.Lang != "yaml" && f.Lang != "yml" {
			continue
		}
		marker := firstLine(f.Content)
		switch {
		case strings.HasPrefix(marker, fragmentMarker):
			merged, err := mergeConfig(base, []byte(f.Content))
			if err != nil {
				t.Errorf("%s: %v", f.where(), err)
				continue
			}
			if _, err := config.Parse(f.where()+" (added to deploy/"+baseConfigPath+")", merged, testEnv); err != nil {
				t.Errorf("%s: the fragment does not pass check-config:\n%v", f.where(), err)
			}
			checked++
		case strings.HasPrefix(marker, configMarker):
			if _, err := config.Parse(f.where(), []byte(f.Content), testEnv); err != nil {
				t.Errorf("%s: the config does not pass check-config:\n%v", f.where(), err)
			}
			checked++
		case slices.Contains(keys, firstKey(f.Content)) && filepath.Base(f.Doc) == "README.md":
			// The README belongs to the whole project: its marked blocks
			// are checked, an unmarked one is only reported.
			t.Logf("%s: an unmarked ghbroker config block (first line %q would have it checked)", f.where(), fragmentMarker)
		case slices.Contains(keys, firstKey(f.Content)):
			t.Errorf("%s: a yaml block starting with the ghbroker key %q is not marked %q or %q, so no test checks it",
				f.where(), firstKey(f.Content), configMarker, fragmentMarker)
		}
	}
	if checked == 0 {
		t.Error("the docs hold no checked ghbroker config")
	}
}

// mergeConfig adds the keys of fragment to base: maps are merged, lists
// appended (a list item with an id replaces the item with that id),
// scalars replaced.
func mergeConfig(base, fragment []byte) ([]byte, error) {
	var b, f yamlv3.Node
	if err := yamlv3.Unmarshal(base, &b); err != nil {
		return nil, err
	}
	if err := yamlv3.Unmarshal(fragment, &f); err != nil {
		return nil, err
	}
	if len(f.Content) == 0 || f.Content[0].Kind != yamlv3.MappingNode {
		return nil, fmt.Errorf("a fragment must be a YAML mapping")
	}
	mergeNode(b.Content[0], f.Content[0])
	return yamlv3.Marshal(&b)
}

func mergeNode(dst, src *yamlv3.Node) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		found := false
		for j := 0; j+1 < len(dst.Content); j += 2 {
			if dst.Content[j].Value != k.Value {
				continue
			}
			found = true
			d := dst.Content[j+1]
			switch {
			case d.Kind == yamlv3.MappingNode && v.Kind == yamlv3.MappingNode:
				mergeNode(d, v)
			case d.Kind == yamlv3.SequenceNode && v.Kind == yamlv3.SequenceNode:
				d.Content = mergeList(d.Content, v.Content)
			default:
				dst.Content[j+1] = v
			}
		}
		if !found {
			dst.Content = append(dst.Content, k, v)
		}
	}
}

// mergeList appends src to dst; an item with the id of an item of dst
// (clients[].id) replaces it instead.
func mergeList(dst, src []*yamlv3.Node) []*yamlv3.Node {
	for _, item := range src {
		if i := slices.IndexFunc(dst, func(d *yamlv3.Node) bool { id := nodeID(d); return id != "" && id == nodeID(item) }); i >= 0 {
			dst[i] = item
			continue
		}
		dst = append(dst, item)
	}
	return dst
}

func nodeID(n *yamlv3.Node) string {
	if n.Kind != yamlv3.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// TestDocsCallbackURL: the GitHub OAuth App's callback URL in the docs is
// the one the broker sends GitHub (issuer + /callback).
func TestDocsCallbackURL(t *testing.T) {
	cfg, _ := loadConfig(t)
	want := cfg.Issuer + "/callback"
	if !strings.Contains(readText(t, filepath.Join(repoRoot, "docs", "github-oauth-app.md")), "`"+want+"`") {
		t.Errorf("docs/github-oauth-app.md does not give the callback URL `%s`", want)
	}
	re := regexp.MustCompile("https?://[^\\s`)\"'|<>]+/callback\\b")
	for _, d := range docFiles(t) {
		for _, m := range re.FindAllString(readText(t, d), -1) {
			if m != want && !strings.HasPrefix(m, "http://localhost") && !strings.HasPrefix(m, "http://127.0.0.1") {
				t.Errorf("%s: callback URL %s, but the broker's is %s", d, m, want)
			}
		}
	}
}

// TestDocsLinksResolve: relative links between the docs and into deploy/
// point at files that exist.
func TestDocsLinksResolve(t *testing.T) {
	re := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, d := range docFiles(t) {
		for _, m := range re.FindAllStringSubmatch(readText(t, d), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			if _, err := os.Stat(filepath.Join(filepath.Dir(d), filepath.FromSlash(target))); err != nil {
				t.Errorf("%s: link %s: %v", d, m[1], err)
			}
		}
	}
}

// TestDocsUseOneExampleDomain: the docs speak of one installation: the
// issuer https://auth.example.com, org acme, and hosts under example.com.
func TestDocsUseOneExampleDomain(t *testing.T) {
	cfg, _ := loadConfig(t)
	if cfg.Issuer != "https://auth.example.com" || !slices.Equal(cfg.GitHub.AllowedOrgs, []string{"acme"}) {
		t.Fatalf("the example config must use issuer https://auth.example.com and org acme")
	}
	re := regexp.MustCompile(`https?://([a-z0-9.-]+\.(?:com|org|net|io|dev))\b`)
	allowed := regexp.MustCompile(`(^|\.)example\.com$|(^|\.)github\.com$|^docs\.github\.com$|^api\.github\.com$|letsencrypt\.org$|^grafana\.github\.io$|^github\.io$|^kubernetes\.io$|^cert-manager\.io$|^www\.getambassador\.io$|^istio\.io$|^doc\.traefik\.io$|^www\.envoyproxy\.io$|^nginx\.org$|^prometheus\.io$|^(schemas\.)?openid\.net$`)
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		for _, m := range re.FindAllStringSubmatch(readText(t, d), -1) {
			if !allowed.MatchString(m[1]) {
				t.Errorf("%s: %s is not the example domain or a known project site", d, m[0])
			}
		}
	}
}
