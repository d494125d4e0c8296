package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ghbroker/ghbroker/store"
)

// The fixtures below set every field, so that a field an engine drops or
// mangles shows up in a diff. Each call returns fresh slices.

func fullSession() store.Session {
	return store.Session{
		ID:            "sid-1",
		Subject:       "583231",
		Login:         "octocat",
		Name:          "The Octocat",
		Email:         "octocat@example.com",
		EmailVerified: true,
		Picture:       "https://avatars.example.com/u/583231",
		Groups:        []string{"acme", "acme:ops"},
		GitHubToken:   []byte{0x00, 0x01, 0xfe, 0xff},
		AuthTime:      start.Add(-time.Hour),
		Renewed:       start.Add(-time.Minute),
		Expires:       start.Add(24 * time.Hour),
	}
}

func fullAuthRequest() store.AuthRequest {
	return store.AuthRequest{
		ClientID:            "grafana",
		RedirectURI:         "https://grafana.example.com/login/generic_oauth",
		Scopes:              []string{"openid", "email", "groups"},
		State:               "xyz",
		Nonce:               "n-0S6_WzA2Mj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
	}
}

func fullAuthCode() store.AuthCode {
	return store.AuthCode{
		ID:             "code-hash-1",
		Request:        fullAuthRequest(),
		SessionID:      "sid-1",
		Used:           true,
		FamilyID:       "fam-1",
		AccessTokenIDs: []string{"jti-1", "jti-2"},
		Replayed:       true,
		Expires:        start.Add(time.Minute),
	}
}

func fullRefreshFamily() store.RefreshFamily {
	return store.RefreshFamily{
		ID:          "fam-1",
		ClientID:    "grafana",
		SessionID:   "sid-1",
		Subject:     "583231",
		Scopes:      []string{"openid", "offline_access"},
		AuthTime:    start.Add(-time.Hour),
		CurrentHash: "hash-1",
		Revoked:     true,
		Expires:     start.Add(24 * time.Hour),
	}
}

// diff reports got against want; time.Time compares with its Equal method.
func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func (s *suite) testSession(t *testing.T) {
	t.Run("Fields", func(t *testing.T) {
		st, _ := s.newStore(t)
		want := fullSession()
		if err := st.CreateSession(t.Context(), want); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		got, err := st.GetSession(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		diff(t, "GetSession", want, got)

		want.Groups = []string{"other"}
		want.Expires = want.Expires.Add(time.Hour)
		err = st.UpdateSession(t.Context(), want.ID, func(old store.Session) (store.Session, error) {
			diff(t, "UpdateSession closure argument", got, old)
			return want, nil
		})
		if err != nil {
			t.Fatalf("UpdateSession: %v", err)
		}
		got, err = st.GetSession(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("GetSession after update: %v", err)
		}
		diff(t, "GetSession after update", want, got)
	})
	t.Run("Copies", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := fullSession()
		if err := st.CreateSession(t.Context(), in); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		in.Groups[0], in.GitHubToken[0] = "changed", 0x42
		out, err := st.GetSession(t.Context(), in.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		out.Groups[0], out.GitHubToken[0] = "changed", 0x42
		err = st.UpdateSession(t.Context(), in.ID, func(old store.Session) (store.Session, error) {
			old.Groups[0], old.GitHubToken[0] = "changed", 0x42
			return old, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("UpdateSession = %v, want the closure's error", err)
		}
		got, err := st.GetSession(t.Context(), in.ID)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		diff(t, "stored session after mutating copies", fullSession(), got)
	})
}

func (s *suite) testAuthCode(t *testing.T) {
	// read returns the stored code through an update that keeps it.
	read := func(t *testing.T, st store.Store, id string) store.AuthCode {
		t.Helper()
		var got store.AuthCode
		err := st.UpdateAuthCode(t.Context(), id, func(c store.AuthCode) (store.AuthCode, error) {
			got = c
			return c, nil
		})
		if err != nil {
			t.Fatalf("UpdateAuthCode: %v", err)
		}
		return got
	}
	t.Run("Fields", func(t *testing.T) {
		st, _ := s.newStore(t)
		want := fullAuthCode()
		if err := st.CreateAuthCode(t.Context(), want); err != nil {
			t.Fatalf("CreateAuthCode: %v", err)
		}
		diff(t, "stored code", want, read(t, st, want.ID))

		want.AccessTokenIDs = append(want.AccessTokenIDs, "jti-3")
		want.Expires = want.Expires.Add(time.Hour)
		err := st.UpdateAuthCode(t.Context(), want.ID, func(store.AuthCode) (store.AuthCode, error) { return want, nil })
		if err != nil {
			t.Fatalf("UpdateAuthCode: %v", err)
		}
		diff(t, "stored code after update", want, read(t, st, want.ID))
	})
	t.Run("Copies", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := fullAuthCode()
		if err := st.CreateAuthCode(t.Context(), in); err != nil {
			t.Fatalf("CreateAuthCode: %v", err)
		}
		in.AccessTokenIDs[0], in.Request.Scopes[0] = "changed", "changed"
		out := read(t, st, in.ID)
		out.AccessTokenIDs[0], out.Request.Scopes[0] = "changed", "changed"
		diff(t, "stored code after mutating copies", fullAuthCode(), read(t, st, in.ID))
	})
}

func (s *suite) testRefreshFamily(t *testing.T) {
	t.Run("Fields", func(t *testing.T) {
		st, _ := s.newStore(t)
		want := fullRefreshFamily()
		if err := st.CreateRefreshFamily(t.Context(), want); err != nil {
			t.Fatalf("CreateRefreshFamily: %v", err)
		}
		got, err := st.GetRefreshFamily(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("GetRefreshFamily: %v", err)
		}
		diff(t, "GetRefreshFamily", want, got)
	})
	t.Run("Copies", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := fullRefreshFamily()
		if err := st.CreateRefreshFamily(t.Context(), in); err != nil {
			t.Fatalf("CreateRefreshFamily: %v", err)
		}
		in.Scopes[0] = "changed"
		out, err := st.GetRefreshFamily(t.Context(), in.ID)
		if err != nil {
			t.Fatalf("GetRefreshFamily: %v", err)
		}
		out.Scopes[0] = "changed"
		err = st.UpdateRefreshFamily(t.Context(), in.ID, func(old store.RefreshFamily) (store.RefreshFamily, error) {
			old.Scopes[0] = "changed"
			return old, errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("UpdateRefreshFamily = %v, want the closure's error", err)
		}
		got, err := st.GetRefreshFamily(t.Context(), in.ID)
		if err != nil {
			t.Fatalf("GetRefreshFamily: %v", err)
		}
		diff(t, "stored family after mutating copies", fullRefreshFamily(), got)
	})
}

// testSweep checks that Sweep deletes exactly the records that expired
// before the time it is given, counts them, and never touches keys or
// secrets.
func (s *suite) testSweep(t *testing.T) {
	st, _ := s.newStore(t)
	ctx := t.Context()
	ks := kinds()
	for _, k := range ks {
		mustCreate(t, st, k, "old", "old", start.Add(time.Hour))
		mustCreate(t, st, k, "edge", "edge", start.Add(2*time.Hour))
		mustCreate(t, st, k, "new", "new", start.Add(3*time.Hour))
	}
	keys := fullKeys()
	if err := st.UpdateKeys(ctx, func(store.Keys) (store.Keys, error) { return keys, nil }); err != nil {
		t.Fatalf("UpdateKeys: %v", err)
	}
	secret, err := st.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) { return []byte("secret"), nil })
	if err != nil {
		t.Fatalf("GetOrCreateSecret: %v", err)
	}

	// The store's clock stays at start: what reads as gone below was
	// deleted, not merely hidden.
	n, err := st.Sweep(ctx, start.Add(2*time.Hour))
	if err != nil || n != len(ks) {
		t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, len(ks))
	}
	if n, err := st.Sweep(ctx, start.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v; want 0, nil", n, err)
	}
	left := 0 // records still stored after the reads below
	for _, k := range ks {
		wantNotFound(t, st, k, "old")
		wantMark(t, st, k, "edge", "edge")
		left += 2 // "new" and "edge"
	}
	if n, err := st.Sweep(ctx, start.Add(100*365*24*time.Hour)); err != nil || n != left {
		t.Errorf("Sweep a century on = %d, %v; want %d, nil", n, err, left)
	}
	for _, k := range ks {
		wantNotFound(t, st, k, "new")
	}
	gotKeys, err := st.GetKeys(ctx)
	if err != nil {
		t.Fatalf("GetKeys after Sweep: %v", err)
	}
	diff(t, "keys after Sweep", keys, gotKeys)
	got, err := st.GetOrCreateSecret(ctx, "cookie", func() ([]byte, error) {
		t.Error("secret generated again after Sweep")
		return []byte("other"), nil
	})
	if err != nil {
		t.Fatalf("GetOrCreateSecret after Sweep: %v", err)
	}
	diff(t, "secret after Sweep", secret, got)
}

func fullDeviceCode() store.DeviceCode {
	return store.DeviceCode{
		ID:        "device-hash-1",
		UserCode:  "BCDFGHJK",
		ClientID:  "cli",
		Scopes:    []string{"openid", "groups"},
		Status:    store.DeviceApproved,
		SessionID: "sid-1",
		Interval:  10,
		LastPoll:  start.Add(time.Second),
		Deadline:  start.Add(10 * time.Minute),
		Expires:   start.Add(20 * time.Minute),
	}
}

// testDeviceCode checks the user-code index: lookups, a user code taken by
// a live record, and updates that would break the index.
func (s *suite) testDeviceCode(t *testing.T) {
	t.Run("Fields", func(t *testing.T) {
		st, _ := s.newStore(t)
		want := fullDeviceCode()
		if err := st.CreateDeviceCode(t.Context(), want); err != nil {
			t.Fatalf("CreateDeviceCode: %v", err)
		}
		got, err := st.GetDeviceCodeByUserCode(t.Context(), want.UserCode)
		if err != nil {
			t.Fatalf("GetDeviceCodeByUserCode: %v", err)
		}
		diff(t, "stored device code", want, got)
		want.Status, want.Interval = store.DeviceRedeemed, 15
		if err := st.UpdateDeviceCode(t.Context(), want.ID, func(store.DeviceCode) (store.DeviceCode, error) { return want, nil }); err != nil {
			t.Fatalf("UpdateDeviceCode: %v", err)
		}
		got, _ = st.GetDeviceCodeByUserCode(t.Context(), want.UserCode)
		diff(t, "device code after update", want, got)
	})
	t.Run("UserCodeTaken", func(t *testing.T) {
		st, c := s.newStore(t)
		first := fullDeviceCode()
		if err := st.CreateDeviceCode(t.Context(), first); err != nil {
			t.Fatalf("CreateDeviceCode: %v", err)
		}
		other := first
		other.ID = "device-hash-2"
		if err := st.CreateDeviceCode(t.Context(), other); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("CreateDeviceCode with a live user code = %v, want ErrAlreadyExists", err)
		}
		c.Advance(21 * time.Minute)
		other.Expires = c.Now().Add(10 * time.Minute)
		if err := st.CreateDeviceCode(t.Context(), other); err != nil {
			t.Fatalf("CreateDeviceCode reusing an expired user code: %v", err)
		}
		got, err := st.GetDeviceCodeByUserCode(t.Context(), other.UserCode)
		if err != nil || got.ID != other.ID {
			t.Fatalf("GetDeviceCodeByUserCode = %q, %v; want %q", got.ID, err, other.ID)
		}
	})
	t.Run("UpdateKeepsIndex", func(t *testing.T) {
		st, _ := s.newStore(t)
		in := fullDeviceCode()
		if err := st.CreateDeviceCode(t.Context(), in); err != nil {
			t.Fatalf("CreateDeviceCode: %v", err)
		}
		for name, change := range map[string]func(*store.DeviceCode){
			"user code": func(c *store.DeviceCode) { c.UserCode = "ZZZZZZZZ" },
			"expiry":    func(c *store.DeviceCode) { c.Expires = c.Expires.Add(time.Hour) },
		} {
			err := st.UpdateDeviceCode(t.Context(), in.ID, func(c store.DeviceCode) (store.DeviceCode, error) {
				change(&c)
				return c, nil
			})
			if err == nil {
				t.Errorf("UpdateDeviceCode changing the %s succeeded, want an error", name)
			}
		}
		got, err := st.GetDeviceCodeByUserCode(t.Context(), in.UserCode)
		if err != nil {
			t.Fatalf("GetDeviceCodeByUserCode: %v", err)
		}
		diff(t, "device code after refused updates", in, got)
	})
	t.Run("Unknown", func(t *testing.T) {
		st, _ := s.newStore(t)
		if _, err := st.GetDeviceCodeByUserCode(t.Context(), "BCDFGHJK"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDeviceCodeByUserCode of nothing = %v, want ErrNotFound", err)
		}
	})
}

// testSweepNothing checks, for an engine whose records expire by lease,
// that Sweep reports nothing and deletes nothing: records are read through
// the store's clock, which stays at start.
func (s *suite) testSweepNothing(t *testing.T) {
	st, _ := s.newStore(t)
	ks := kinds()
	for _, k := range ks {
		mustCreate(t, st, k, "a", "a", start.Add(time.Hour))
	}
	if n, err := st.Sweep(t.Context(), start.Add(100*365*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("Sweep = %d, %v; want 0, nil", n, err)
	}
	for _, k := range ks {
		wantMark(t, st, k, "a", "a")
	}
}
