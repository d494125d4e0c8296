package githubfake

import (
	"net/url"
	"testing"
)

func TestLinkHeader(t *testing.T) {
	const self = "https://ghe.example/api/v3/user/teams"
	tests := []struct {
		name, query string
		page, last  int
		want        string
	}{
		{"one page", "", 1, 1, ""},
		{"first of three", "per_page=100", 1, 3,
			`<https://ghe.example/api/v3/user/teams?per_page=100&page=2>; rel="next", <https://ghe.example/api/v3/user/teams?per_page=100&page=3>; rel="last"`},
		{"middle", "per_page=100&page=2", 2, 3,
			`<https://ghe.example/api/v3/user/teams?per_page=100&page=1>; rel="prev", <https://ghe.example/api/v3/user/teams?per_page=100&page=3>; rel="next", <https://ghe.example/api/v3/user/teams?per_page=100&page=3>; rel="last", <https://ghe.example/api/v3/user/teams?per_page=100&page=1>; rel="first"`},
		{"last", "page=3&per_page=100", 3, 3,
			`<https://ghe.example/api/v3/user/teams?per_page=100&page=2>; rel="prev", <https://ghe.example/api/v3/user/teams?per_page=100&page=1>; rel="first"`},
		{"other params kept in order", "state=active&page=1", 1, 2,
			`<https://ghe.example/api/v3/user/teams?state=active&page=2>; rel="next", <https://ghe.example/api/v3/user/teams?state=active&page=2>; rel="last"`},
		{"beyond the end", "page=9", 9, 2,
			`<https://ghe.example/api/v3/user/teams?page=8>; rel="prev", <https://ghe.example/api/v3/user/teams?page=1>; rel="first"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := linkHeader(self, tc.query, tc.page, tc.last); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPageParams(t *testing.T) {
	tests := []struct {
		query          string
		page, per_page int
	}{
		{"", 1, 30},
		{"page=3&per_page=50", 3, 50},
		{"per_page=1000", 1, 100},
		{"per_page=0&page=0", 1, 30},
		{"per_page=x&page=-2", 1, 30},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		if p, n := pageParams(q); p != tc.page || n != tc.per_page {
			t.Errorf("%q: page %d per_page %d, want %d %d", tc.query, p, n, tc.page, tc.per_page)
		}
	}
}
